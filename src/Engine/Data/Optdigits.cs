using System.Globalization;

namespace Engine.Data;

/// <summary>
/// Reader for the UCI "Optical Recognition of Handwritten Digits" files (optdigits.tra / optdigits.tes): an
/// optional header line, then 64 pixel counts in 0..16 (an 8x8 image, row-major) and the class 0..9 per line.
/// Pixels are scaled to [0, 1].
/// </summary>
public static class Optdigits
{
    /// <summary>Loads one file as a data set of [64] samples with labels.</summary>
    public static Dataset Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"optdigits: file not found: {path}", path);
        var features = new List<float>();
        var labels = new List<int>();
        int lineNo = 0;
        foreach (var raw in File.ReadLines(path))
        {
            lineNo++;
            var line = raw.Trim();
            if (line.Length == 0 || char.IsLetter(line[0])) continue;
            var parts = line.Split(',');
            if (parts.Length != 65)
                throw new FormatException($"optdigits: {path}:{lineNo}: expected 65 comma-separated values, found {parts.Length}.");
            for (int i = 0; i < 64; i++)
            {
                if (!int.TryParse(parts[i], NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) || v < 0 || v > 16)
                    throw new FormatException($"optdigits: {path}:{lineNo}: pixel {i} is '{parts[i]}', expected an integer in 0..16.");
                features.Add(v / 16f);
            }
            if (!int.TryParse(parts[64], NumberStyles.Integer, CultureInfo.InvariantCulture, out var c) || c < 0 || c > 9)
                throw new FormatException($"optdigits: {path}:{lineNo}: class is '{parts[64]}', expected 0..9.");
            labels.Add(c);
        }
        if (labels.Count == 0) throw new FormatException($"optdigits: {path}: no samples (the file is empty).");
        return new Dataset(features.ToArray(), [64], labels.ToArray());
    }

    /// <summary>
    /// Finds the folder holding optdigits.tra and optdigits.tes: <paramref name="folder"/> if given, else
    /// data/optdigits beside the program, else data/optdigits in the current folder or one of its parents.
    /// </summary>
    public static string Locate(string? folder = null)
    {
        if (folder != null)
        {
            if (File.Exists(Path.Combine(folder, "optdigits.tra"))) return folder;
            throw new DirectoryNotFoundException($"optdigits: {folder} does not contain optdigits.tra.");
        }
        var candidates = new List<string> { Path.Combine(AppContext.BaseDirectory, "data", "optdigits") };
        for (var d = new DirectoryInfo(Directory.GetCurrentDirectory()); d != null; d = d.Parent)
            candidates.Add(Path.Combine(d.FullName, "data", "optdigits"));
        foreach (var c in candidates)
            if (File.Exists(Path.Combine(c, "optdigits.tra"))) return c;
        throw new DirectoryNotFoundException($"optdigits: data not found; looked in {string.Join(", ", candidates.Take(3))}, ...");
    }
}
