using Engine.Kernels;
using Engine.Kernels.Vectors;

namespace Engine.Tests.Kernels;

/// <summary>
/// The tests that force the CPU kernels' vector width (<see cref="Simd.Force"/>, process-wide): they run alone, after
/// the parallel collections, so no other test sees the forced width.
/// </summary>
[CollectionDefinition("simd-width", DisableParallelization = true)]
public sealed class SimdWidthCollection { }

// The CPU kernel tables at every vector width, whatever the machine: a width the CPU lacks runs in software, and the
// default-width classes (CpuKernelSetTests and friends) cover only the machine's widest width. Each test forces its
// class's width for its own duration. Small tables: they reach every vector body, unrolled loop and scalar tail at
// 16 lanes, and emulated widths are slow.

/// <summary>The CPU set's kernel table at one forced width.</summary>
public abstract class CpuKernelSetWidthTests : KernelSetTests, IDisposable
{
    private readonly IDisposable width;

    private protected CpuKernelSetWidthTests(SimdWidth width) => this.width = Simd.Force(width);

    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.Cpu);


    /// <summary>Restores the width.</summary>
    public void Dispose() => width.Dispose();
}

/// <summary>The CPU set's fused optimizer kernels at one forced width.</summary>
public abstract class CpuMultiGradientWidthTests : OptimizerKernelTests, IDisposable
{
    private readonly IDisposable width;

    private protected CpuMultiGradientWidthTests(SimdWidth width) => this.width = Simd.Force(width);

    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.Cpu);

    /// <inheritdoc />
    protected override IOptimizerKernels O => Device.Kernels.OptimizerKernels();

    /// <inheritdoc />
    protected override bool Fused => true;

    /// <summary>Restores the width.</summary>
    public void Dispose() => width.Dispose();
}

/// <summary>The CPU set's SPN kernels at one forced width.</summary>
public abstract class CpuSpnWidthTests : SpnKernelTests, IDisposable
{
    private readonly IDisposable width;

    private protected CpuSpnWidthTests(SimdWidth width) => this.width = Simd.Force(width);

    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.Cpu);

    /// <summary>Restores the width.</summary>
    public void Dispose() => width.Dispose();
}

/// <summary>The CPU set's FFTs at one forced width (full lane groups need batches of at least the lane count).</summary>
public abstract class CpuFftWidthTests : FftKernelTests, IDisposable
{
    private readonly IDisposable width;

    private protected CpuFftWidthTests(SimdWidth width) => this.width = Simd.Force(width);

    /// <inheritdoc />
    protected override Device Device => Device.Get(DeviceKind.Cpu);

    /// <summary>Restores the width.</summary>
    public void Dispose() => width.Dispose();
}

/// <summary>512 bits.</summary>
[Collection("simd-width")] public sealed class CpuKernelSetTests512() : CpuKernelSetWidthTests(SimdWidth.V512);
/// <summary>256 bits.</summary>
[Collection("simd-width")] public sealed class CpuKernelSetTests256() : CpuKernelSetWidthTests(SimdWidth.V256);
/// <summary>128 bits.</summary>
[Collection("simd-width")] public sealed class CpuKernelSetTests128() : CpuKernelSetWidthTests(SimdWidth.V128);
/// <summary>Scalar code only.</summary>
[Collection("simd-width")] public sealed class CpuKernelSetTestsScalar() : CpuKernelSetWidthTests(SimdWidth.Scalar);

/// <summary>512 bits.</summary>
[Collection("simd-width")] public sealed class CpuMultiGradientTests512() : CpuMultiGradientWidthTests(SimdWidth.V512);
/// <summary>256 bits.</summary>
[Collection("simd-width")] public sealed class CpuMultiGradientTests256() : CpuMultiGradientWidthTests(SimdWidth.V256);
/// <summary>128 bits.</summary>
[Collection("simd-width")] public sealed class CpuMultiGradientTests128() : CpuMultiGradientWidthTests(SimdWidth.V128);
/// <summary>Scalar code only.</summary>
[Collection("simd-width")] public sealed class CpuMultiGradientTestsScalar() : CpuMultiGradientWidthTests(SimdWidth.Scalar);

/// <summary>512 bits.</summary>
[Collection("simd-width")] public sealed class CpuSpnTests512() : CpuSpnWidthTests(SimdWidth.V512);
/// <summary>256 bits.</summary>
[Collection("simd-width")] public sealed class CpuSpnTests256() : CpuSpnWidthTests(SimdWidth.V256);
/// <summary>128 bits.</summary>
[Collection("simd-width")] public sealed class CpuSpnTests128() : CpuSpnWidthTests(SimdWidth.V128);
/// <summary>Scalar code only.</summary>
[Collection("simd-width")] public sealed class CpuSpnTestsScalar() : CpuSpnWidthTests(SimdWidth.Scalar);

/// <summary>512 bits.</summary>
[Collection("simd-width")] public sealed class CpuFftTests512() : CpuFftWidthTests(SimdWidth.V512);
/// <summary>256 bits.</summary>
[Collection("simd-width")] public sealed class CpuFftTests256() : CpuFftWidthTests(SimdWidth.V256);
/// <summary>128 bits.</summary>
[Collection("simd-width")] public sealed class CpuFftTests128() : CpuFftWidthTests(SimdWidth.V128);
/// <summary>Scalar code only.</summary>
[Collection("simd-width")] public sealed class CpuFftTestsScalar() : CpuFftWidthTests(SimdWidth.Scalar);

/// <summary>The width setting itself.</summary>
public sealed class SimdWidthSettingTests
{
    /// <summary>The environment variable's names, and a clear error for anything else.</summary>
    [Fact]
    public void Parse_NamesEveryWidth()
    {
        Assert.Equal(SimdWidth.V512, Simd.Parse("512"));
        Assert.Equal(SimdWidth.V256, Simd.Parse(" 256 "));
        Assert.Equal(SimdWidth.V128, Simd.Parse("128"));
        Assert.Equal(SimdWidth.Scalar, Simd.Parse("Scalar"));
        Assert.Null(Simd.Parse(""));
        Assert.Null(Simd.Parse(null));
        var e = Assert.Throws<ArgumentException>(() => Simd.Parse("avx2"));
        Assert.Contains(Simd.EnvironmentVariable, e.Message);
        Assert.Contains("avx2", e.Message);
    }

    /// <summary>Without the environment variable the default is the widest width the hardware accelerates.</summary>
    [Fact]
    public void Default_IsTheEnvironmentsOrTheWidest() =>
        Assert.Equal(Simd.FromEnvironment() ?? Simd.Widest(), Simd.Default);
}
