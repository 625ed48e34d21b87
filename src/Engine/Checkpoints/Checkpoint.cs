using System.Globalization;
using Engine.Autodiff;
using Engine.Nn;
using Engine.Optim;

namespace Engine.Checkpoints;

/// <summary>
/// Saves and loads a module's parameters, its index buffers (permutations) and optionally an optimizer's state as a
/// safetensors file that other tools can read. Names are the module's dotted paths: parameters "0.weight" (F32, the
/// parameter's shape), buffers "blocks.0.token1.input_permutation" (I32, [length]), optimizer state
/// "optimizer.&lt;parameter&gt;.&lt;state&gt;" (F32, e.g. exp_avg, exp_avg_sq, momentum_buffer) and per-parameter step
/// counts "optimizer.&lt;parameter&gt;.step" (I32 scalar). Saves are atomic; loads validate the whole file against the
/// module before changing anything.
/// </summary>
public static class Checkpoint
{
    /// <summary>Prefix of optimizer-state tensor names.</summary>
    public const string OptimizerPrefix = "optimizer.";

    /// <summary>Metadata key holding the checkpoint format ("engine-checkpoint/1").</summary>
    public const string FormatKey = "engine.format";
    /// <summary>Metadata key holding the optimizer's type name.</summary>
    public const string OptimizerKey = "engine.optimizer";
    /// <summary>Metadata key holding the optimizer's step count.</summary>
    public const string StepCountKey = "engine.optimizer.step_count";
    /// <summary>Metadata key holding the optimizer's learning rate.</summary>
    public const string LearningRateKey = "engine.optimizer.learning_rate";

    private const string FormatValue = "engine-checkpoint/1";

    /// <summary>
    /// Writes <paramref name="module"/>'s parameters and buffers, and <paramref name="optimizer"/>'s state if given, to
    /// <paramref name="path"/> atomically (temporary file, flush, rename): if anything fails the target is untouched.
    /// </summary>
    /// <param name="module">The model.</param>
    /// <param name="path">Target file (conventionally *.safetensors).</param>
    /// <param name="optimizer">An optimizer over the module's parameters, or null.</param>
    /// <param name="metadata">Extra string metadata (keys must not start with "engine.").</param>
    /// <exception cref="ArgumentException">The optimizer updates a tensor that is not a parameter of the module, or a
    /// metadata key is reserved.</exception>
    /// <exception cref="IOException">The path cannot be written (empty, a directory, a missing folder, a folder that is
    /// a file); the message quotes the path as given.</exception>
    public static void Save(Module module, string path, Optimizer? optimizer = null, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var (entries, meta) = Describe(module, optimizer, metadata);
        Safetensors.WriteFile(path, entries, meta);
    }

    /// <summary>Writes the checkpoint to a stream (not atomic; see <see cref="Save"/>).</summary>
    public static void Write(Module module, Stream stream, Optimizer? optimizer = null, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var (entries, meta) = Describe(module, optimizer, metadata);
        Safetensors.Write(stream, entries, meta);
    }

    private static (List<SafetensorsEntry>, Dictionary<string, string>) Describe(Module module, Optimizer? optimizer,
        IReadOnlyDictionary<string, string>? metadata)
    {
        var entries = new List<SafetensorsEntry>();
        var names = new Dictionary<Tensor, string>(ReferenceEqualityComparer.Instance);
        foreach (var (name, p) in module.NamedParameters())
        {
            names[p] = name;
            entries.Add(SafetensorsEntry.Singles(name, Long(p.Shape), p.ToArray));
        }
        foreach (var (name, b) in module.NamedBuffers())
            entries.Add(SafetensorsEntry.Int32s(name, [b.Length], b.Read));
        var meta = new Dictionary<string, string>(StringComparer.Ordinal);
        if (metadata != null)
            foreach (var (k, v) in metadata)
            {
                if (k.StartsWith("engine.", StringComparison.Ordinal))
                    throw new ArgumentException($"Checkpoint.Save: metadata key '{k}' is reserved (keys starting with 'engine.').");
                meta[k] = v;
            }
        meta[FormatKey] = FormatValue;
        if (optimizer != null)
        {
            meta[OptimizerKey] = optimizer.GetType().Name;
            meta[StepCountKey] = optimizer.StepCount.ToString(CultureInfo.InvariantCulture);
            meta[LearningRateKey] = optimizer.LearningRate.ToString("R", CultureInfo.InvariantCulture);
            var stateNames = optimizer.CheckpointStateNames;
            foreach (var p in optimizer.Parameters)
            {
                if (!names.TryGetValue(p, out var pname))
                    throw new ArgumentException($"Checkpoint.Save: the {optimizer.GetType().Name} updates a tensor {p.Name ?? Shape.Format(p.Shape)} that is not a parameter of the {module.GetType().Name}.");
                var state = optimizer.PeekState(p);
                if (state != null)
                    for (int i = 0; i < state.Length; i++)
                    {
                        var buffer = state[i];
                        string sname = i < stateNames.Count ? stateNames[i] : "state" + i.ToString(CultureInfo.InvariantCulture);
                        entries.Add(SafetensorsEntry.Singles($"{OptimizerPrefix}{pname}.{sname}", Long(p.Shape), buffer.ToArray));
                    }
                if (optimizer.HasParameterSteps && optimizer.GetParameterStep(p) > 0)
                {
                    int step = optimizer.GetParameterStep(p);
                    entries.Add(SafetensorsEntry.Int32s($"{OptimizerPrefix}{pname}.step", [], () => [step]));
                }
            }
        }
        return (entries, meta);
    }

    /// <summary>
    /// Loads <paramref name="path"/> into <paramref name="module"/> (and <paramref name="optimizer"/> if given). The
    /// whole file is validated first — safetensors structure, every parameter and buffer present with the module's
    /// name, dtype and shape, no unknown tensors, buffers valid (permutations), values finite unless
    /// <paramref name="allowNonFinite"/>, optimizer type and state complete — and only then copied in, so on any error
    /// the module and optimizer are unchanged. Optimizer entries in the file are ignored when no optimizer is given.
    /// </summary>
    /// <returns>The file's metadata.</returns>
    /// <exception cref="InvalidDataException">The file is invalid or does not match the module/optimizer; the message
    /// names the tensor and what was expected.</exception>
    /// <exception cref="FileNotFoundException">No file at <paramref name="path"/>.</exception>
    /// <exception cref="IOException">The path is empty, a directory, a device, a named pipe or unreadable; the message
    /// quotes it. Nothing is opened that is not a regular file.</exception>
    public static IReadOnlyDictionary<string, string> Load(Module module, string path, Optimizer? optimizer = null, bool allowNonFinite = false)
    {
        var file = Safetensors.ReadFile(path);
        try
        {
            Apply(module, file, optimizer, allowNonFinite);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{e.Message} (file '{CheckpointFiles.Clip(path)}')", e);
        }
        return file.Metadata;
    }

    /// <summary>Loads a checkpoint from bytes in memory (see <see cref="Load"/>).</summary>
    public static IReadOnlyDictionary<string, string> Read(Module module, ReadOnlyMemory<byte> bytes, Optimizer? optimizer = null, bool allowNonFinite = false)
    {
        var file = Safetensors.Read(bytes);
        Apply(module, file, optimizer, allowNonFinite);
        return file.Metadata;
    }

    private static void Apply(Module module, SafetensorsFile file, Optimizer? optimizer, bool allowNonFinite)
    {
        string owner = module.GetType().Name;
        // Every change is queued and run only after the last check passed.
        var apply = new List<Action>();
        var used = new HashSet<string>(StringComparer.Ordinal);
        var names = new Dictionary<Tensor, string>(ReferenceEqualityComparer.Instance);

        foreach (var (name, p) in module.NamedParameters())
        {
            names[p] = name;
            var values = Floats(file, name, p.Shape, $"parameter '{name}' of the {owner}", allowNonFinite);
            used.Add(name);
            apply.Add(() => p.CopyFrom(values));
        }
        foreach (var (name, b) in module.NamedBuffers())
        {
            var t = Require(file, name, $"buffer '{name}' of the {owner}");
            CheckType(t, SafetensorsDType.I32, [b.Length], $"buffer '{name}'");
            var values = t.ToInt32s();
            try
            {
                b.Validate(values);
            }
            catch (ArgumentException e)
            {
                throw new InvalidDataException($"checkpoint: buffer '{name}' is not valid: {e.Message}", e);
            }
            used.Add(name);
            apply.Add(() => b.Write(values));
        }

        var optimizerTensors = file.Tensors.Where(t => t.Name.StartsWith(OptimizerPrefix, StringComparison.Ordinal)).ToList();
        if (optimizer != null)
            PlanOptimizer(file, optimizer, names, owner, allowNonFinite, used, apply);
        else
            foreach (var t in optimizerTensors) used.Add(t.Name);

        var unknown = file.Tensors.Where(t => !used.Contains(t.Name)).Select(t => t.Name).ToList();
        if (unknown.Count > 0)
            throw new InvalidDataException(
                $"checkpoint: {unknown.Count} tensor(s) are not parameters, buffers or optimizer state of the {owner}: {string.Join(", ", unknown.Take(5).Select(n => $"'{CheckpointFiles.Clip(n)}'"))}{(unknown.Count > 5 ? ", ..." : "")}.");

        foreach (var a in apply) a();
    }

    private static void PlanOptimizer(SafetensorsFile file, Optimizer optimizer, Dictionary<Tensor, string> names, string owner,
        bool allowNonFinite, HashSet<string> used, List<Action> apply)
    {
        string type = optimizer.GetType().Name;
        if (!file.Metadata.TryGetValue(OptimizerKey, out var savedType))
            throw new InvalidDataException($"checkpoint: no optimizer state was saved (metadata '{OptimizerKey}' missing), but a {type} was given to load into.");
        if (savedType != type)
            throw new InvalidDataException($"checkpoint: the optimizer state is for a {CheckpointFiles.Clip(savedType)}, the optimizer given is a {type}.");
        int stepCount = ParseMeta(file, StepCountKey, s => int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v : (int?)null, "a non-negative integer");
        float lr = ParseMeta(file, LearningRateKey,
            s => float.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && float.IsFinite(v) && v >= 0 ? v : (float?)null, "a finite number >= 0");
        var stateNames = optimizer.CheckpointStateNames;
        foreach (var p in optimizer.Parameters)
        {
            if (!names.TryGetValue(p, out var pname))
                throw new InvalidDataException($"checkpoint: the {type} updates a tensor {p.Name ?? Shape.Format(p.Shape)} that is not a parameter of the {owner}.");
            var keys = stateNames.Select(s => $"{OptimizerPrefix}{pname}.{s}").ToList();
            int present = keys.Count(k => file.Find(k) != null);
            if (present != 0 && present != keys.Count)
                throw new InvalidDataException(
                    $"checkpoint: optimizer state of '{pname}' is incomplete: expected {string.Join(", ", keys.Select(k => $"'{k}'"))}, found {present} of them.");
            float[][]? values = null;
            if (present > 0)
            {
                values = keys.Select(k => Floats(file, k, p.Shape, $"optimizer state '{k}'", allowNonFinite)).ToArray();
                foreach (var k in keys) used.Add(k);
            }
            int step = 0;
            string stepKey = $"{OptimizerPrefix}{pname}.step";
            if (optimizer.HasParameterSteps && file.Find(stepKey) is { } st)
            {
                CheckType(st, SafetensorsDType.I32, [], $"optimizer step '{stepKey}'");
                step = st.ToInt32s()[0];
                if (step < 0) throw new InvalidDataException($"checkpoint: optimizer step '{stepKey}' is {step}, must be >= 0.");
                used.Add(stepKey);
            }
            var param = p;
            apply.Add(() =>
            {
                if (values == null) optimizer.ClearState(param);
                else
                {
                    var buffers = optimizer.GetOrCreateState(param);
                    for (int i = 0; i < values.Length; i++) buffers[i].CopyFromHost(values[i]);
                }
                if (optimizer.HasParameterSteps) optimizer.SetParameterStep(param, step);
            });
        }
        apply.Add(() =>
        {
            optimizer.SetStepCount(stepCount);
            optimizer.LearningRate = lr;
        });
    }

    private static T ParseMeta<T>(SafetensorsFile file, string key, Func<string, T?> parse, string what) where T : struct
    {
        if (!file.Metadata.TryGetValue(key, out var s))
            throw new InvalidDataException($"checkpoint: metadata '{key}' is missing.");
        return parse(s) ?? throw new InvalidDataException($"checkpoint: metadata '{key}' is '{CheckpointFiles.Clip(s)}', expected {what}.");
    }

    private static SafetensorsTensor Require(SafetensorsFile file, string name, string what) =>
        file.Find(name) ?? throw new InvalidDataException($"checkpoint: {what} is missing from the file.");

    private static float[] Floats(SafetensorsFile file, string name, int[] shape, string what, bool allowNonFinite)
    {
        var t = Require(file, name, what);
        CheckType(t, SafetensorsDType.F32, Long(shape), what);
        var values = t.ToSingles();
        if (!allowNonFinite)
            for (int i = 0; i < values.Length; i++)
                if (!float.IsFinite(values[i]))
                    throw new InvalidDataException($"checkpoint: {what} holds {values[i].ToString(CultureInfo.InvariantCulture)} at element {i} (pass allowNonFinite to accept NaN/Inf).");
        return values;
    }

    private static void CheckType(SafetensorsTensor t, SafetensorsDType dtype, long[] shape, string what)
    {
        if (t.DType != dtype)
            throw new InvalidDataException($"checkpoint: {what} is {t.DType} in the file, expected {dtype}.");
        if (!t.Shape.SequenceEqual(shape))
            throw new InvalidDataException($"checkpoint: {what} has shape {CheckpointFiles.FormatShape(t.Shape)} in the file, expected {CheckpointFiles.FormatShape(shape)}.");
    }

    private static long[] Long(int[] shape) => shape.Select(d => (long)d).ToArray();
}
