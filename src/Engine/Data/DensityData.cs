using System.Globalization;

namespace Engine.Data;

/// <summary>
/// A binary density-estimation data set in the ".data" format of the standard benchmark collection (nltcs, plants,
/// jester, baudio, ...): one sample per line, comma-separated 0/1 values, no header. Values are kept as floats
/// [Rows, Columns] row-major, ready for <c>Spn.LogLikelihood</c>.
/// </summary>
public sealed class DensityData
{
    /// <summary>Wraps row-major values (checked: a whole number of rows; every value finite or NaN for missing).</summary>
    /// <exception cref="ArgumentException">A partial row, or an infinite value (the message names its row and column).</exception>
    public DensityData(float[] values, int columns, string name = "")
    {
        ArgumentNullException.ThrowIfNull(values);
        if (columns < 1 || values.Length % columns != 0)
            throw new ArgumentException($"DensityData: {values.Length} values are not whole rows of {columns} columns.");
        for (int k = 0; k < values.Length; k++)
            if (float.IsInfinity(values[k]))
                throw new ArgumentException($"DensityData{(name.Length > 0 ? $" '{name}'" : "")}: value {values[k]} at row {k / columns}, column {k % columns} is infinite (NaN marks a missing value).");
        Values = values;
        Columns = columns;
        Rows = values.Length / columns;
        Name = name;
    }

    /// <summary>Row-major values, [Rows, Columns].</summary>
    public float[] Values { get; }
    /// <summary>Number of samples.</summary>
    public int Rows { get; }
    /// <summary>Number of variables.</summary>
    public int Columns { get; }
    /// <summary>Where the data came from (file path or set name).</summary>
    public string Name { get; }

    /// <summary>
    /// Reads a .data file. Blank lines are skipped.
    /// </summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="FormatException">A row has a different number of values than the first row, or a value is not
    /// 0 or 1 (the message names the file, the line and the column), or the file has no rows.</exception>
    public static DensityData Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"density data: file not found: {path}", path);
        var values = new List<float>();
        int columns = -1, lineNo = 0;
        foreach (var raw in File.ReadLines(path))
        {
            lineNo++;
            var line = raw.Trim();
            if (line.Length == 0) continue;
            var parts = line.Split(',');
            if (columns < 0) columns = parts.Length;
            else if (parts.Length != columns)
                throw new FormatException($"density data: {path}:{lineNo}: {parts.Length} values, but the first row has {columns} (ragged rows).");
            for (int j = 0; j < parts.Length; j++)
            {
                var p = parts[j].Trim();
                if (p == "0") values.Add(0f);
                else if (p == "1") values.Add(1f);
                else throw new FormatException($"density data: {path}:{lineNo}: column {j + 1} is '{p}', expected 0 or 1.");
            }
        }
        if (columns < 0) throw new FormatException($"density data: {path}: no rows (the file is empty).");
        return new DensityData(values.ToArray(), columns, path);
    }

    /// <summary>
    /// Loads NAME.train.data, NAME.valid.data and NAME.test.data from <paramref name="folder"/> (default:
    /// <see cref="Locate"/>), checking that all three have the same number of columns.
    /// </summary>
    public static (DensityData Train, DensityData Valid, DensityData Test) LoadSplits(string name, string? folder = null)
    {
        var dir = folder ?? Locate(name);
        var train = Load(Path.Combine(dir, name + ".train.data"));
        var valid = Load(Path.Combine(dir, name + ".valid.data"));
        var test = Load(Path.Combine(dir, name + ".test.data"));
        if (valid.Columns != train.Columns || test.Columns != train.Columns)
            throw new FormatException($"density data: {name}: train has {train.Columns} columns, valid {valid.Columns}, test {test.Columns}.");
        return (train, valid, test);
    }

    /// <summary>
    /// Finds the folder holding NAME.train.data: data/density/NAME beside the program, else in the current folder or
    /// one of its parents (as the optdigits reader does).
    /// </summary>
    public static string Locate(string name)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        var candidates = new List<string> { Path.Combine(AppContext.BaseDirectory, "data", "density", name) };
        for (var d = new DirectoryInfo(Directory.GetCurrentDirectory()); d != null; d = d.Parent)
            candidates.Add(Path.Combine(d.FullName, "data", "density", name));
        foreach (var c in candidates)
            if (File.Exists(Path.Combine(c, name + ".train.data"))) return c;
        throw new DirectoryNotFoundException($"density data: set '{name}' not found; looked in {string.Join(", ", candidates.Take(3))}, ...");
    }
}
