namespace Engine.Data;

/// <summary>Small synthetic classification sets, generated from a seed.</summary>
public static class ToyData
{
    /// <summary>The four XOR points (±1 coordinates), label = x0 XOR x1.</summary>
    public static Dataset Xor() => new(
        [-1f, -1f, -1f, 1f, 1f, -1f, 1f, 1f], [2], [0, 1, 1, 0]);

    /// <summary>Two interleaving half circles (scikit-learn's make_moons), with Gaussian noise.</summary>
    public static Dataset TwoMoons(int samples, float noise, int seed)
    {
        var rng = new Random(seed);
        var x = new float[samples * 2];
        var y = new int[samples];
        int outer = samples / 2;
        for (int i = 0; i < samples; i++)
        {
            bool first = i < outer;
            int n = first ? outer : samples - outer;
            int j = first ? i : i - outer;
            double t = Math.PI * j / Math.Max(n - 1, 1);
            double px = first ? Math.Cos(t) : 1 - Math.Cos(t);
            double py = first ? Math.Sin(t) : 0.5 - Math.Sin(t);
            x[2 * i] = (float)(px + noise * Gaussian(rng));
            x[2 * i + 1] = (float)(py + noise * Gaussian(rng));
            y[i] = first ? 0 : 1;
        }
        return new Dataset(x, [2], y);
    }

    private static double Gaussian(Random rng)
    {
        double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }
}
