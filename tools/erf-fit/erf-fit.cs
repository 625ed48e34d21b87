// Fits the float erf of src/Kernels/Elementwise/ErfFit.cs: on each interval [j/2, (j+1)/2] of |x| (j = 0..7), a
// polynomial in r = |x| - j/2. Each polynomial minimises its largest error (in ulp of erf on the first interval, where
// the formula adds r exactly and the polynomial, constant term 0, fits erf(r) - r, so tiny and subnormal x keep their
// relative precision; absolute on the others, where erf lies in [0.52, 1) and one ulp is 2^-24 throughout) by Lawson's
// iteration over a dense grid in double; the coefficients are
// then rounded to float one at a time, constant term first, each rounding followed by a refit of those not yet
// rounded. Prints ErfFit's constants and the float formula's error on every float in [2^-20, 4] against a double erf,
// in three orders of evaluation: Horner, Estrin, and VecMath.Erf's (Estrin for c2..c7, then Horner for the last two
// steps, whose roundings are the ones that reach the result at full weight).
// Usage: dotnet run -c Release tools/erf-fit/erf-fit.cs [degree]
using System.Globalization;

int degree = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 7;
const int Intervals = 8;
var table = new float[Intervals, degree + 1];
for (int j = 0; j < Intervals; j++)
{
    var r = Enumerable.Range(0, 2001).Select(i => 0.25 - 0.25 * Math.Cos(Math.PI * i / 2000)).ToArray();
    // The first interval's linear term 1·r is added exactly (by the formula), so its polynomial fits erf(r) - r.
    var y = r.Select(v => Erf(j / 2.0 + v) - (j == 0 ? v : 0)).ToArray();
    // First interval: error in ulp of erf, constant term fixed at 0; the others: absolute error.
    var weight = r.Select((v, i) => j == 0 ? (v == 0 ? 0 : 1 / Ulp((float)(y[i] + v))) : 1.0).ToArray();
    var fixedCoefficients = new List<double>();
    if (j == 0) fixedCoefficients.Add(0);
    while (fixedCoefficients.Count <= degree)
    {
        var c = Fit(r, y, weight, degree, fixedCoefficients);
        if (fixedCoefficients.Count == (j == 0 ? 1 : 0)) Console.WriteLine($"interval {j}: double fit error {FitError(r, y, weight, c):E3} (in ulp for the first, absolute for the others)");
        fixedCoefficients.Add((float)c[fixedCoefficients.Count]);
    }
    for (int k = 0; k <= degree; k++) table[j, k] = (float)fixedCoefficients[k];
}
// ErfFit's constants: JjCk is coefficient ck of interval j.
for (int j = 0; j < Intervals; j++)
{
    string C(int k) => $"J{j}C{k} = " + table[j, k].ToString("R", CultureInfo.InvariantCulture) + "f";
    Console.WriteLine($"    internal const float {string.Join(", ", Enumerable.Range(0, 4).Select(C))},");
    Console.WriteLine($"        {string.Join(", ", Enumerable.Range(4, degree - 3).Select(C))};");
}
foreach (var (name, eval) in new (string, Func<float, float>)[] { ("Horner", x => Eval(table, x, 0)), ("Estrin", x => Eval(table, x, 1)), ("VecMath.Erf's order", x => Eval(table, x, 2)) })
{
    int lo = BitConverter.SingleToInt32Bits(MathF.Pow(2, -20)), hi = BitConverter.SingleToInt32Bits(4f);
    int threads = Environment.ProcessorCount;
    var results = new (double Ulp, double Abs, float AtUlp, float AtAbs)[threads];
    Parallel.For(0, threads, t =>
    {
        var w = (Ulp: 0.0, Abs: 0.0, AtUlp: 0f, AtAbs: 0f);
        for (long bits = lo + (long)(hi - lo + 1) * t / threads; bits < lo + (long)(hi - lo + 1) * (t + 1) / threads; bits++)
        {
            float x = BitConverter.Int32BitsToSingle((int)bits);
            double reference = Erf(x), e = Math.Abs(eval(x) - reference);
            float rf = (float)reference;
            double ulp = MathF.BitIncrement(rf) - rf;
            if (e / ulp > w.Ulp) (w.Ulp, w.AtUlp) = (e / ulp, x);
            if (e > w.Abs) (w.Abs, w.AtAbs) = (e, x);
        }
        results[t] = w;
    });
    var wu = results.MaxBy(v => v.Ulp);
    var wa = results.MaxBy(v => v.Abs);
    Console.WriteLine($"{name}: every float in [2^-20, 4]: at most {wu.Ulp:F3} ulp (x = {wu.AtUlp:R}), absolute error at most {wa.Abs:E3} (x = {wa.AtAbs:R}); " +
                      $"erf(4) = {eval(4f):R}, erf(eps) = {eval(float.Epsilon):R}");
}

// The float formula: r = |x| - j/2 exact, coefficients of interval j, fused multiply-adds.
static double Ulp(float y) => MathF.BitIncrement(MathF.Abs(y)) - MathF.Abs(y);

static float Eval(float[,] table, float x, int form)
{
    float a = MathF.Min(MathF.BitDecrement(4f), MathF.Abs(x));
    int j = (int)MathF.Round(MathF.FusedMultiplyAdd(a, 2f, -0.5f), MidpointRounding.ToEven);
    float r = MathF.FusedMultiplyAdd(j, -0.5f, a);
    float baseValue = MathF.FusedMultiplyAdd(j == 0 ? 1f : 0f, r, table[j, 0]);
    int d = table.GetLength(1) - 1;
    float p;
    if (form == 0)
    {
        p = table[j, d];
        for (int k = d - 1; k >= 1; k--) p = MathF.FusedMultiplyAdd(p, r, table[j, k]);
        p = MathF.FusedMultiplyAdd(p, r, baseValue);
    }
    else if (form == 2)
    {
        float r2 = r * r;
        float F(int k) => k <= d ? table[j, k] : 0f;
        float q = MathF.FusedMultiplyAdd(MathF.FusedMultiplyAdd(MathF.FusedMultiplyAdd(F(7), r, F(6)), r2, MathF.FusedMultiplyAdd(F(5), r, F(4))), r2, MathF.FusedMultiplyAdd(F(3), r, F(2)));
        p = MathF.FusedMultiplyAdd(MathF.FusedMultiplyAdd(q, r, F(1)), r, baseValue);
    }
    else
    {
        float r2 = r * r, r4 = r2 * r2;
        float F(int k) => k <= d ? table[j, k] : 0f;
        float p01 = MathF.FusedMultiplyAdd(F(1), r, baseValue), p23 = MathF.FusedMultiplyAdd(F(3), r, F(2));
        float p45 = MathF.FusedMultiplyAdd(F(5), r, F(4)), p67 = MathF.FusedMultiplyAdd(F(7), r, F(6));
        p = MathF.FusedMultiplyAdd(MathF.FusedMultiplyAdd(p67, r2, p45), r4, MathF.FusedMultiplyAdd(p23, r2, p01));
    }
    return MathF.CopySign(p, x);
}

static double FitError(double[] r, double[] y, double[] weight, double[] c)
{
    double worst = 0;
    for (int i = 0; i < r.Length; i++)
    {
        double p = c[^1];
        for (int k = c.Length - 2; k >= 0; k--) p = p * r[i] + c[k];
        worst = Math.Max(worst, Math.Abs(p - y[i]) * weight[i]);
    }
    return worst;
}

// Lawson's iteration: weighted least squares whose weights grow where the error is largest, tending to minimax. The
// coefficients in `fixedCoefficients` (the lowest ones) are held.
static double[] Fit(double[] r, double[] y, double[] weight, int degree, List<double> fixedCoefficients)
{
    int n = r.Length, f = fixedCoefficients.Count, free = degree + 1 - f;
    var lambda = Enumerable.Repeat(1.0 / n, n).ToArray();
    double[] best = [], c = new double[degree + 1];
    double bestError = double.MaxValue;
    for (int iter = 0; iter < 300; iter++)
    {
        var A = new double[n, free];
        var b = new double[n];
        for (int i = 0; i < n; i++)
        {
            double w = Math.Sqrt(lambda[i]) * weight[i], rest = y[i], p = 1;
            for (int k = 0; k <= degree; k++, p *= r[i])
                if (k < f) rest -= fixedCoefficients[k] * p;
                else A[i, k - f] = w * p;
            b[i] = w * rest;
        }
        var sol = LeastSquares(A, b);
        for (int k = 0; k <= degree; k++) c[k] = k < f ? fixedCoefficients[k] : sol[k - f];
        double worst = 0, sum = 0;
        var e = new double[n];
        for (int i = 0; i < n; i++)
        {
            double p = c[degree];
            for (int k = degree - 1; k >= 0; k--) p = p * r[i] + c[k];
            e[i] = Math.Abs(p - y[i]) * weight[i];
            worst = Math.Max(worst, e[i]);
        }
        if (worst < bestError) (bestError, best) = (worst, (double[])c.Clone());
        for (int i = 0; i < n; i++) sum += lambda[i] *= e[i] + 1e-300;
        for (int i = 0; i < n; i++) lambda[i] /= sum;
    }
    return best;
}

// erf in double: the Taylor series of e^{x²}erf(x) below 2.5 (positive terms), erfc's continued fraction above.
static double Erf(double x)
{
    double z = Math.Abs(x), erf;
    if (z < 2.5)
    {
        double term = z, sum = z, z2 = 2 * z * z;
        for (int k = 1; k < 200 && term > 1e-17 * sum; k++)
        {
            term *= z2 / (2 * k + 1);
            sum += term;
        }
        erf = 2 / Math.Sqrt(Math.PI) * Math.Exp(-z * z) * sum;
    }
    else
    {
        double g = z;
        for (int k = 60; k >= 1; k--) g = z + 0.5 * k / g;
        erf = 1 - Math.Exp(-z * z) / Math.Sqrt(Math.PI) / g;
    }
    return x < 0 ? -erf : erf;
}

// min |A·x - y| by Householder QR.
static double[] LeastSquares(double[,] A, double[] y)
{
    int rows = A.GetLength(0), cols = A.GetLength(1);
    var R = (double[,])A.Clone();
    var q = (double[])y.Clone();
    for (int j = 0; j < cols; j++)
    {
        double norm = 0;
        for (int i = j; i < rows; i++) norm += R[i, j] * R[i, j];
        norm = Math.Sqrt(norm);
        double alpha = R[j, j] > 0 ? -norm : norm;
        var v = new double[rows];
        for (int i = j; i < rows; i++) v[i] = R[i, j];
        v[j] -= alpha;
        double vv = 0;
        for (int i = j; i < rows; i++) vv += v[i] * v[i];
        if (vv == 0) continue;
        for (int k = j; k < cols; k++)
        {
            double dot = 0;
            for (int i = j; i < rows; i++) dot += v[i] * R[i, k];
            dot = 2 * dot / vv;
            for (int i = j; i < rows; i++) R[i, k] -= dot * v[i];
        }
        double dq = 0;
        for (int i = j; i < rows; i++) dq += v[i] * q[i];
        dq = 2 * dq / vv;
        for (int i = j; i < rows; i++) q[i] -= dq * v[i];
    }
    var sol = new double[cols];
    for (int j = cols - 1; j >= 0; j--)
    {
        double s = q[j];
        for (int k = j + 1; k < cols; k++) s -= R[j, k] * sol[k];
        sol[j] = s / R[j, j];
    }
    return sol;
}
