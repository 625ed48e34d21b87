namespace Engine.Tests; [CollectionDefinition("ilgpu", DisableParallelization = true)] public sealed class IlgpuCollection { }
