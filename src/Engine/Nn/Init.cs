using Engine.Autodiff;

namespace Engine.Nn;

/// <summary>
/// Weight initialisers. Each overwrites a parameter in place (outside the tape) from a seed; fan-in and fan-out are
/// read from the shape as in PyTorch: for [out, in, ...] fan_in = in·receptive, fan_out = out·receptive. Without a
/// seed, the random ones draw theirs from the global generator (<see cref="Engine.Random"/>).
/// </summary>
public static class Init
{
    /// <summary>(fan_in, fan_out) of a weight shape.</summary>
    public static (int FanIn, int FanOut) Fans(int[] shape)
    {
        if (shape.Length < 2) throw new ArgumentException($"init: fan in/out need a weight of rank >= 2, got {Shape.Format(shape)}.");
        int receptive = 1;
        for (int i = 2; i < shape.Length; i++) receptive *= shape[i];
        return (shape[1] * receptive, shape[0] * receptive);
    }

    /// <summary>He/Kaiming uniform: U(-b, b), b = gain·sqrt(3 / fan_in), gain = sqrt(2) for ReLU.</summary>
    public static void KaimingUniform(Tensor w, ulong? seed = null, float gain = 1.41421356f)
    {
        float b = gain * MathF.Sqrt(3f / Fans(w.Shape).FanIn);
        Overwrite(w, Tensor.Uniform(w.Shape, seed, -b, b, w.Device));
    }

    /// <summary>He/Kaiming normal: N(0, gain² / fan_in).</summary>
    public static void KaimingNormal(Tensor w, ulong? seed = null, float gain = 1.41421356f) =>
        Overwrite(w, Tensor.Normal(w.Shape, seed, 0f, gain / MathF.Sqrt(Fans(w.Shape).FanIn), w.Device));

    /// <summary>Xavier/Glorot uniform: U(-b, b), b = gain·sqrt(6 / (fan_in + fan_out)).</summary>
    public static void XavierUniform(Tensor w, ulong? seed = null, float gain = 1f)
    {
        var (fi, fo) = Fans(w.Shape);
        float b = gain * MathF.Sqrt(6f / (fi + fo));
        Overwrite(w, Tensor.Uniform(w.Shape, seed, -b, b, w.Device));
    }

    /// <summary>Xavier/Glorot normal: N(0, gain²·2 / (fan_in + fan_out)).</summary>
    public static void XavierNormal(Tensor w, ulong? seed = null, float gain = 1f)
    {
        var (fi, fo) = Fans(w.Shape);
        Overwrite(w, Tensor.Normal(w.Shape, seed, 0f, gain * MathF.Sqrt(2f / (fi + fo)), w.Device));
    }

    /// <summary>The identity matrix (ones on the main diagonal of a 2-D weight, rectangular allowed).</summary>
    public static void Identity(Tensor w)
    {
        if (w.Rank != 2) throw new ArgumentException($"init.identity: needs a 2-D weight, got {Shape.Format(w.Shape)}.");
        int r = w.Shape[0], c = w.Shape[1];
        var data = new float[r * c];
        for (int i = 0; i < Math.Min(r, c); i++) data[i * c + i] = 1f;
        w.CopyFrom(data);
    }

    /// <summary>Fills with a constant.</summary>
    public static void Constant(Tensor w, float value) => w.CopyFrom(Enumerable.Repeat(value, (int)w.Size).ToArray());

    private static void Overwrite(Tensor w, Tensor source)
    {
        using (source) w.CopyFrom(source);
    }
}
