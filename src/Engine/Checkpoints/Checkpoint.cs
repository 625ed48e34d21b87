using System.Buffers.Binary;
using System.Globalization;
using Engine.Autodiff;
using Engine.Nn;
using Engine.Optim;

namespace Engine.Checkpoints;

/// <summary>
/// Saves and loads state dictionaries as safetensors files that other tools can read: a module's
/// (<see cref="Module.StateDict"/>), optionally an optimizer's (<see cref="Optimizer.StateDict"/>, with its
/// parameter groups and attached scheduler) and the global generator's (<see cref="Engine.Random.StateDict"/>).
/// Saves are atomic; loads check the format version and the whole file against the module and optimizer before
/// changing anything.
/// </summary>
/// <remarks>
/// <para>Layout (format <see cref="FormatVersion"/>): module entries under their own paths ("0.weight": F32 with the
/// parameter's shape; "blocks.0.token1.input_permutation": I32 [length]); the optimizer's under "optimizer." and the
/// generator's under "random.". Entry kinds map to safetensors as: tensor → F32, integer array → I32 [n], Int64 → I64
/// scalar, Float64 → F64 scalar, Boolean → BOOL scalar, Text → the metadata value "engine.&lt;key&gt;" (for example
/// "engine.optimizer.type" = "Sam(Adam)"). The metadata "engine.format" holds "engine-checkpoint/&lt;version&gt;".</para>
/// <para>Files of format 1 (written before optimizer state had a contract) load their module weights; their optimizer
/// state cannot be restored (format 1 recorded neither hyper-parameters nor groups, and wrapped optimizers' state was
/// incomplete), so loading one with an optimizer throws.</para>
/// </remarks>
public static class Checkpoint
{
    /// <summary>The format version this build writes; it reads this one and every older one.</summary>
    public const int FormatVersion = 2;

    /// <summary>Metadata key holding the checkpoint format ("engine-checkpoint/2").</summary>
    public const string FormatKey = "engine.format";

    /// <summary>Prefix of the optimizer's entries.</summary>
    public const string OptimizerPrefix = "optimizer.";

    /// <summary>Prefix of the global generator's entries.</summary>
    public const string RandomPrefix = "random.";

    private const string FormatPrefix = "engine-checkpoint/";
    private const string ReservedMetadata = "engine.";

    /// <summary>
    /// Writes <paramref name="module"/>'s state, <paramref name="optimizer"/>'s if given, and the global generator's
    /// to <paramref name="path"/> atomically (temporary file, flush, rename): if anything fails the target is
    /// untouched. Pass the optimizer you step (a wrapper such as <see cref="Sam"/> saves its base optimizer's state).
    /// </summary>
    /// <param name="module">The model.</param>
    /// <param name="path">Target file (conventionally *.safetensors).</param>
    /// <param name="optimizer">An optimizer over the module's parameters, or null.</param>
    /// <param name="metadata">Extra string metadata (keys must not start with "engine.").</param>
    /// <exception cref="ArgumentException">The optimizer updates a tensor that is not a parameter of the module, or a
    /// metadata key is reserved.</exception>
    /// <exception cref="IOException">The path cannot be written (empty, a directory, a missing folder, a folder that is
    /// a file); the message quotes the path as given.</exception>
    public static void Save(Module module, string path, Optimizer? optimizer = null, IReadOnlyDictionary<string, string>? metadata = null) =>
        SaveStateDict(Describe(module, optimizer), path, metadata);

    /// <summary>Writes the checkpoint to a stream (not atomic; see <see cref="Save"/>).</summary>
    public static void Write(Module module, Stream stream, Optimizer? optimizer = null, IReadOnlyDictionary<string, string>? metadata = null) =>
        WriteStateDict(Describe(module, optimizer), stream, metadata);

    /// <summary>Writes any state dictionary to <paramref name="path"/> atomically, in the layout described above.</summary>
    /// <exception cref="ArgumentException">A metadata key is reserved, or a text entry's key would not fit the metadata.</exception>
    public static void SaveStateDict(StateDict state, string path, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var (entries, meta) = Encode(state, metadata);
        Safetensors.WriteFile(path, entries, meta);
    }

    /// <summary>Writes any state dictionary to a stream (not atomic).</summary>
    public static void WriteStateDict(StateDict state, Stream stream, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var (entries, meta) = Encode(state, metadata);
        Safetensors.Write(stream, entries, meta);
    }

    /// <summary>
    /// Reads a checkpoint as a state dictionary (tensors on the CPU device) and its user metadata, after checking the
    /// format version.
    /// </summary>
    /// <exception cref="InvalidDataException">The file is not a valid checkpoint, or was written by a newer version.</exception>
    public static (StateDict State, IReadOnlyDictionary<string, string> Metadata) LoadStateDict(string path)
    {
        var file = Safetensors.ReadFile(path);
        try
        {
            return (Decode(file, CheckFormat(file), _ => true), file.Metadata);
        }
        catch (InvalidDataException e)
        {
            throw new InvalidDataException($"{e.Message} (file '{CheckpointFiles.Clip(path)}')", e);
        }
    }

    private static StateDict Describe(Module module, Optimizer? optimizer)
    {
        ArgumentNullException.ThrowIfNull(module);
        var own = module.StateDict();
        foreach (var key in own.Keys)
            if (key.StartsWith(OptimizerPrefix, StringComparison.Ordinal) || key.StartsWith(RandomPrefix, StringComparison.Ordinal))
                throw new ArgumentException($"Checkpoint.Save: the {module.GetType().Name}'s entry '{key}' starts with a prefix checkpoints reserve ('{OptimizerPrefix}', '{RandomPrefix}'); rename the sub-module.");
        var state = new StateDict();
        state.AddAll("", own);
        if (optimizer != null)
        {
            CheckParameters(module, optimizer, message => new ArgumentException($"Checkpoint.Save: {message}"));
            state.AddAll(OptimizerPrefix, optimizer.StateDict());
        }
        state.AddAll(RandomPrefix, Engine.Random.StateDict());
        return state;
    }

    /// <summary>Every tensor the optimizer updates must be a parameter of the module.</summary>
    private static void CheckParameters(Module module, Optimizer optimizer, Func<string, Exception> error)
    {
        var mine = new HashSet<Tensor>(module.Parameters(), ReferenceEqualityComparer.Instance);
        foreach (var p in optimizer.Parameters)
            if (!mine.Contains(p))
                throw error($"the {optimizer.GetType().Name} updates a tensor {p.Name ?? Shape.Format(p.Shape)} that is not a parameter of the {module.GetType().Name}.");
    }

    private static (List<SafetensorsEntry>, Dictionary<string, string>) Encode(StateDict state, IReadOnlyDictionary<string, string>? metadata)
    {
        ArgumentNullException.ThrowIfNull(state);
        var meta = new Dictionary<string, string>(StringComparer.Ordinal);
        if (metadata != null)
            foreach (var (k, v) in metadata)
            {
                if (k.StartsWith(ReservedMetadata, StringComparison.Ordinal))
                    throw new ArgumentException($"Checkpoint.Save: metadata key '{k}' is reserved (keys starting with '{ReservedMetadata}').");
                meta[k] = v;
            }
        meta[FormatKey] = FormatPrefix + FormatVersion.ToString(CultureInfo.InvariantCulture);
        var entries = new List<SafetensorsEntry>();
        foreach (var (key, value) in state)
        {
            switch (value.Kind)
            {
                case StateKind.Tensor:
                    var t = value.Tensor;
                    entries.Add(SafetensorsEntry.Singles(key, t.Shape.Select(d => (long)d).ToArray(), t.ToArray));
                    break;
                case StateKind.Int32s:
                    var ints = value.Int32s;
                    entries.Add(SafetensorsEntry.Int32s(key, [ints.Length], () => ints));
                    break;
                case StateKind.Int64:
                    long l = value.Int64;
                    entries.Add(new SafetensorsEntry(key, SafetensorsDType.I64, [], () => Safetensors.ToBytes(new[] { l })));
                    break;
                case StateKind.Float64:
                    double d = value.Float64;
                    entries.Add(new SafetensorsEntry(key, SafetensorsDType.F64, [], () => Safetensors.ToBytes(new[] { d })));
                    break;
                case StateKind.Boolean:
                    byte b = value.Boolean ? (byte)1 : (byte)0;
                    entries.Add(new SafetensorsEntry(key, SafetensorsDType.BOOL, [], () => [b]));
                    break;
                default:
                    string metaKey = ReservedMetadata + key;
                    if (metaKey == FormatKey)
                        throw new ArgumentException($"Checkpoint.Save: the text entry '{key}' would overwrite the format metadata.");
                    meta[metaKey] = value.Text;
                    break;
            }
        }
        return (entries, meta);
    }

    /// <summary>The format version of <paramref name="file"/>, checked.</summary>
    private static int CheckFormat(SafetensorsFile file)
    {
        if (!file.Metadata.TryGetValue(FormatKey, out var format))
            throw new InvalidDataException($"checkpoint: not an Engine checkpoint (metadata '{FormatKey}' is missing).");
        if (!format.StartsWith(FormatPrefix, StringComparison.Ordinal)
            || !int.TryParse(format.AsSpan(FormatPrefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out int version)
            || version < 1)
            throw new InvalidDataException($"checkpoint: metadata '{FormatKey}' is '{CheckpointFiles.Clip(format)}', expected '{FormatPrefix}<version>' (this build writes '{FormatPrefix}{FormatVersion}').");
        if (version > FormatVersion)
            throw new InvalidDataException(
                $"checkpoint: written by a newer version of Engine (format {version}); this version reads formats 1 to {FormatVersion}. Update Engine to load it.");
        return version;
    }

    /// <summary>The file's entries whose names pass <paramref name="wanted"/>, as a state dictionary (F32 → CPU tensors).</summary>
    private static StateDict Decode(SafetensorsFile file, int version, Func<string, bool> wanted)
    {
        var state = new StateDict();
        try
        {
            foreach (var t in file.Tensors)
                if (wanted(t.Name)) state.Add(t.Name, DecodeTensor(t));
            // Format 1 kept optimizer settings in its metadata, outside any state dictionary.
            foreach (var (key, value) in version < 2 ? new Dictionary<string, string>() : file.Metadata)
            {
                if (key == FormatKey || !key.StartsWith(ReservedMetadata, StringComparison.Ordinal)) continue;
                string name = key[ReservedMetadata.Length..];
                if (!wanted(name)) continue;
                if (state.ContainsKey(name))
                    throw new InvalidDataException($"checkpoint: '{CheckpointFiles.Clip(name)}' is both a tensor and the text metadata '{CheckpointFiles.Clip(key)}'.");
                state.Add(name, value);
            }
        }
        catch (ArgumentException e)
        {
            // A name the dictionary refuses (empty, say) is a fault of the file.
            Release(state);
            throw new InvalidDataException($"checkpoint: {CheckpointFiles.ClipMessage(e.Message)}", e);
        }
        catch
        {
            Release(state);
            throw;
        }
        return state;
    }

    private static StateValue DecodeTensor(SafetensorsTensor t)
    {
        var span = t.Data.Span;
        return (t.DType, t.Shape.Length) switch
        {
            (SafetensorsDType.F32, _) => StateValue.Of(Tensor.FromArray(t.ToSingles(), t.Shape.Select(d => (int)d).ToArray(), Kernels.Device.Cpu)),
            (SafetensorsDType.I32, 1) => StateValue.Of(t.ToInt32s()),
            (SafetensorsDType.I64, 0) => StateValue.Of(BinaryPrimitives.ReadInt64LittleEndian(span)),
            (SafetensorsDType.F64, 0) => StateValue.Of(BinaryPrimitives.ReadDoubleLittleEndian(span)),
            (SafetensorsDType.BOOL, 0) => StateValue.Of(span[0] != 0),
            _ => throw new InvalidDataException(
                $"checkpoint: tensor '{CheckpointFiles.Clip(t.Name)}' is {t.DType} {CheckpointFiles.FormatShape(t.Shape)} in the file, expected F32 (or an I32 vector, or an I64, F64 or BOOL scalar)."),
        };
    }

    /// <summary>Frees the tensors a decoded dictionary holds.</summary>
    private static void Release(StateDict state)
    {
        foreach (var (_, v) in state)
            if (v.Kind == StateKind.Tensor) v.Tensor.Dispose();
    }

    /// <summary>
    /// Loads <paramref name="path"/> into <paramref name="module"/> (and <paramref name="optimizer"/> if given). The
    /// format version is checked and the whole file validated first — safetensors structure, every parameter and
    /// buffer present with the module's name, dtype and shape, no unknown entries, buffers valid (permutations),
    /// values finite unless <paramref name="allowNonFinite"/>, the optimizer's type, hyper-parameters, groups,
    /// per-parameter state and scheduler complete — and only then copied in, so on any error the module, the
    /// optimizer and the generator are unchanged. Optimizer entries are ignored when no optimizer is given. Loading
    /// with an optimizer resumes a run, so it also restores the global generator (<see cref="Engine.Random"/>).
    /// </summary>
    /// <returns>The file's metadata.</returns>
    /// <exception cref="InvalidDataException">The file is invalid, of a newer format, or does not match the
    /// module/optimizer; the message names the entry and what was expected.</exception>
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
        ArgumentNullException.ThrowIfNull(module);
        int version = CheckFormat(file);
        if (optimizer != null && version < 2)
            throw new InvalidDataException(
                $"checkpoint: format {version} files hold no restorable optimizer state; load the weights only (no optimizer) and start the {optimizer.GetType().Name} afresh.");
        bool resume = optimizer != null;
        var state = Decode(file, version, name => resume || !IsRunState(name));
        try
        {
            var actions = new List<Action>();
            try
            {
                actions.Add(module.PrepareLoadStateDict(state.Without(OptimizerPrefix, RandomPrefix), allowNonFinite));
                if (optimizer != null)
                {
                    var saved = state.WithPrefix(OptimizerPrefix);
                    if (saved.Count == 0)
                        throw new InvalidDataException($"checkpoint: no optimizer state was saved, but a {optimizer.GetType().Name} was given to load into.");
                    CheckParameters(module, optimizer, message => new InvalidDataException($"checkpoint: {message}"));
                    actions.Add(optimizer.PrepareLoadStateDict(saved, allowNonFinite));
                    actions.Add(Engine.Random.PrepareLoadStateDict(state.WithPrefix(RandomPrefix)));
                }
            }
            catch (ArgumentException e)
            {
                // The loaders quote names and shapes from the file: keep what a message repeats of it bounded.
                throw new InvalidDataException($"checkpoint: {CheckpointFiles.ClipMessage(e.Message)}", e);
            }
            foreach (var a in actions) a();
        }
        finally
        {
            Release(state);
        }
    }

    private static bool IsRunState(string name) =>
        name.StartsWith(OptimizerPrefix, StringComparison.Ordinal) || name.StartsWith(RandomPrefix, StringComparison.Ordinal);
}
