using System.Runtime.CompilerServices;

// ILGPU's CPU accelerator emits a dynamic assembly named "ILGPURuntime" that instantiates the kernels' internal
// parameter structs (StridedLayout, GemmParams, ...): let it see them instead of making them public API.
[assembly: InternalsVisibleTo("ILGPURuntime")]
