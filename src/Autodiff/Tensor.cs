using Engine.Kernels;

namespace Engine.Autodiff;

/// <summary>
/// A float32 tensor: a shape and contiguous row-major storage on one <see cref="Kernels.Device"/>. Ops on tensors
/// that require gradients are recorded on a tape; <see cref="Backward"/> walks it in reverse.
/// Tensors own device memory: dispose them, or let a <see cref="TensorScope"/> do it.
/// </summary>
public sealed partial class Tensor : IDisposable
{
    private readonly Storage storage;
    internal readonly int[] shape;
    private bool requiresGrad;
    private bool disposed;
    private Tensor? grad;

    internal Tensor(Storage storage, int[] shape, bool track = true)
    {
        this.storage = storage;
        this.shape = shape;
        Size = Autodiff.Shape.Size(shape);
        if (track) TensorScope.Track(this);
        if (LeakDetector.Sampling) LeakDetector.OnCreate(this);
    }

    /// <summary>The device holding the data.</summary>
    public Device Device => storage.Buffer.Device;

    /// <summary>The shape (a copy; a scalar has shape []).</summary>
    public int[] Shape => (int[])shape.Clone();

    /// <summary>Number of axes.</summary>
    public int Rank => shape.Length;

    /// <summary>Number of elements.</summary>
    public long Size { get; }

    /// <summary>An optional name, used in error messages and by modules.</summary>
    public string? Name { get; set; }

    /// <summary>The recorded op that produced this tensor; null for leaves.</summary>
    internal Node? Node { get; private set; }

    /// <summary>True for tensors not produced by a recorded op (inputs, parameters).</summary>
    public bool IsLeaf => Node == null;

    /// <summary>
    /// True if this tensor outlives every <see cref="TensorScope"/> (parameters, optimizer state, engine-owned
    /// gradients): a scope never disposes it, so its owner must. Set it on a tensor created inside a scope that has to
    /// live on, such as state a custom module or optimizer allocates lazily.
    /// </summary>
    public bool Persistent { get; set; }

    /// <summary>
    /// Whether gradients flow to this tensor. Settable on leaves only; results of recorded ops require gradients
    /// when any input does.
    /// </summary>
    public bool RequiresGrad
    {
        get => requiresGrad;
        set
        {
            if (!IsLeaf && !value)
                throw new InvalidOperationException($"RequiresGrad: '{Describe()}' is the result of '{Node!.Op}'; use Detach() instead of clearing RequiresGrad.");
            requiresGrad = value;
        }
    }

    /// <summary>The accumulated gradient after <see cref="Backward"/> (leaves only); null before.</summary>
    public Tensor? Grad
    {
        get => grad;
        set
        {
            // A compiled graph learns which tensor's gradient each of its buffers became (see Trace.GradAssigned).
            Trace.Current?.GradAssigned(this, grad);
            grad = value;
        }
    }

    /// <summary>True once disposed; any further use throws.</summary>
    public bool IsDisposed => disposed;

    /// <summary>
    /// The device buffer holding the data, row-major, <see cref="Size"/> elements (shared with reshape views), for code
    /// that hands raw device memory to another library: a communication library reducing gradients in place, a
    /// P/Invoke call. Writes through it bypass the tape, like <see cref="InPlace"/> operations.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The tensor was disposed.</exception>
    public DeviceBuffer<float> Buffer
    {
        get
        {
            if (disposed) throw new ObjectDisposedException(nameof(Tensor), $"tensor {Describe()} was used after it was disposed.");
            return storage.Buffer;
        }
    }

    internal IKernelSet K => storage.Buffer.Device.Kernels;

    /// <summary>Throws naming <paramref name="op"/> if the tensor was disposed.</summary>
    internal void CheckAlive(string op)
    {
        if (disposed)
            throw new ObjectDisposedException(nameof(Tensor), $"{op}: tensor {Describe()} was used after it was disposed.");
    }

    internal string Describe() => (Name != null ? Name + " " : "") + Autodiff.Shape.Format(shape);

    // ---------- creation ----------

    /// <summary>
    /// An uninitialised tensor (like <c>torch.empty</c>): its values are whatever the memory held, so overwrite it
    /// (for example with <see cref="CopyFrom(Tensor)"/> or an <see cref="InPlace"/> operation) before reading it.
    /// </summary>
    /// <exception cref="ArgumentException">A dimension is negative, or the shape has more elements than a 64-bit count holds.</exception>
    public static Tensor Empty(int[] shape, Device? device = null)
    {
        ArgumentNullException.ThrowIfNull(shape);
        return Empty(shape, device ?? Device.Default, track: true, op: "Empty");
    }

    /// <summary>
    /// Allocates an uninitialised tensor, tracked by the current scope when <paramref name="track"/>; errors name
    /// <paramref name="op"/> and the shape.
    /// </summary>
    internal static Tensor Empty(int[] shape, Device device, bool track = true, string op = "tensor")
    {
        long size = CheckedSize(op, shape);
        device.ThrowIfDisposed(op);
        DeviceBuffer<float> buffer;
        try
        {
            buffer = device.Kernels.Allocate(size);
        }
        catch (Exception e) when (e is OutOfMemoryException or OverflowException)
        {
            throw new OutOfMemoryException($"{op}: cannot allocate shape {Autodiff.Shape.Format(shape)} ({size} elements, {4 * size} bytes) on {device.Name}.", e);
        }
        return new Tensor(new Storage(buffer), (int[])shape.Clone(), track);
    }

    /// <summary>The number of elements of <paramref name="shape"/>, or an error naming <paramref name="op"/> and the shape.</summary>
    /// <exception cref="ArgumentException">A negative dimension, or more elements than a 64-bit count holds.</exception>
    private static long CheckedSize(string op, int[] shape)
    {
        foreach (var d in shape)
            if (d < 0) throw new ArgumentException($"{op}: negative dimension in shape {Autodiff.Shape.Format(shape)}.");
        try
        {
            return Autodiff.Shape.Size(shape);
        }
        catch (OverflowException e)
        {
            throw new ArgumentException($"{op}: shape {Autodiff.Shape.Format(shape)} has more elements than a 64-bit count can hold.", e);
        }
    }

    /// <summary>A tensor holding a copy of <paramref name="data"/> with the given shape.</summary>
    /// <exception cref="ArgumentException">The data length differs from the shape's size.</exception>
    public static Tensor FromArray(float[] data, int[] shape, Device? device = null, bool requiresGrad = false)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(shape);
        long n = CheckedSize("FromArray", shape);
        if (n != data.Length)
            throw new ArgumentException($"FromArray: shape {Autodiff.Shape.Format(shape)} holds {n} elements but the data has {data.Length}.");
        var t = Empty(shape, device ?? Device.Default, op: "FromArray");
        t.Buffer.CopyFromHost(data);
        t.RequiresGrad = requiresGrad;
        return t;
    }

    /// <summary>A 1-D tensor holding a copy of <paramref name="data"/>.</summary>
    public static Tensor FromArray(float[] data, Device? device = null) => FromArray(data, [data.Length], device);

    /// <summary>A 2-D tensor holding a copy of <paramref name="data"/>.</summary>
    public static Tensor FromArray(float[,] data, Device? device = null)
    {
        int r = data.GetLength(0), c = data.GetLength(1);
        var flat = new float[r * c];
        for (int i = 0; i < r; i++)
            for (int j = 0; j < c; j++)
                flat[i * c + j] = data[i, j];
        return FromArray(flat, [r, c], device);
    }

    /// <summary>A scalar (shape []) tensor.</summary>
    public static Tensor Scalar(float value, Device? device = null) => Full([], value, device);

    /// <summary>A tensor filled with <paramref name="value"/>.</summary>
    public static Tensor Full(int[] shape, float value, Device? device = null) => Filled("Full", shape, value, device);

    /// <summary>A tensor of zeros.</summary>
    public static Tensor Zeros(int[] shape, Device? device = null) => Filled("Zeros", shape, 0f, device);

    /// <summary>A tensor of ones.</summary>
    public static Tensor Ones(int[] shape, Device? device = null) => Filled("Ones", shape, 1f, device);

    private static Tensor Filled(string op, int[] shape, float value, Device? device)
    {
        ArgumentNullException.ThrowIfNull(shape);
        var t = Empty(shape, device ?? Device.Default, op: op);
        t.K.Fill(t.Buffer, value);
        return t;
    }

    /// <summary>
    /// Uniform random values in [low, high), reproducible from <paramref name="seed"/> on every device; without a seed,
    /// one is drawn from the global generator (<see cref="Engine.Random"/>).
    /// </summary>
    public static Tensor Uniform(int[] shape, ulong? seed = null, float low = 0f, float high = 1f, Device? device = null)
    {
        var t = Empty(shape, device ?? Device.Default);
        t.K.RandomUniform(t.Buffer, seed ?? Engine.Random.NextSeed(), low, high);
        return t;
    }

    /// <summary>
    /// Normal random values, reproducible from <paramref name="seed"/> on every device; without a seed, one is drawn
    /// from the global generator (<see cref="Engine.Random"/>).
    /// </summary>
    public static Tensor Normal(int[] shape, ulong? seed = null, float mean = 0f, float std = 1f, Device? device = null)
    {
        var t = Empty(shape, device ?? Device.Default);
        t.K.RandomNormal(t.Buffer, seed ?? Engine.Random.NextSeed(), mean, std);
        return t;
    }

    /// <summary>A tensor of zeros with this tensor's shape and device.</summary>
    public Tensor ZerosLike() => Zeros(shape, Device);

    /// <summary>A tensor of ones with this tensor's shape and device.</summary>
    public Tensor OnesLike() => Ones(shape, Device);

    // ---------- host transfer ----------

    /// <summary>Copies the data to a new host array (row-major).</summary>
    public float[] ToArray()
    {
        CheckAlive("ToArray");
        return Buffer.ToArray();
    }

    /// <summary>The value of a one-element tensor.</summary>
    public float Item()
    {
        if (Size != 1) throw new InvalidOperationException($"Item: tensor {Describe()} has {Size} elements, not 1.");
        return ToArray()[0];
    }

    /// <summary>Overwrites the data from a host array of the same size (not recorded on the tape).</summary>
    public void CopyFrom(ReadOnlySpan<float> data)
    {
        CheckAlive("CopyFrom");
        if (data.Length != Size)
            throw new ArgumentException($"CopyFrom: tensor {Describe()} holds {Size} elements, the data has {data.Length}.");
        Ops.ForgetDataChecks(this);
        Buffer.CopyFromHost(data);
    }

    /// <summary>Overwrites the data with another tensor's (same shape and device; not recorded on the tape).</summary>
    public void CopyFrom(Tensor source)
    {
        Ops.CheckSameDevice("CopyFrom", this, source);
        if (!Autodiff.Shape.Equal(shape, source.shape))
            throw new ArgumentException($"CopyFrom: shapes differ: destination {Describe()}, source {source.Describe()}.");
        Ops.ForgetDataChecks(this);
        K.Copy(source.Buffer, 0, Buffer, 0, Size);
    }

    // ---------- graph ----------

    /// <summary>
    /// Records <paramref name="backward"/> for this result if grad mode is on and any input requires gradients; in
    /// <see cref="AnomalyMode"/>, first checks the result for NaN and infinities.
    /// </summary>
    internal Tensor Record(string op, Tensor[] inputs, Func<Tensor, Tensor?[]> backward)
    {
        RecordOnTape(op, inputs, backward);
        if (AnomalyMode.IsEnabled) AnomalyMode.CheckForward(op, this, inputs);
        return this;
    }

    private Tensor RecordOnTape(string op, Tensor[] inputs, Func<Tensor, Tensor?[]> backward)
    {
        if (!GradMode.IsEnabled) return this;
        foreach (var i in inputs)
        {
            if (i.RequiresGrad)
            {
                Node = new Node(op, inputs, backward);
                requiresGrad = true;
                return this;
            }
        }
        return this;
    }

    /// <summary>A tensor sharing this one's data but cut from the tape (no gradient flows through it).</summary>
    public Tensor Detach()
    {
        CheckAlive("Detach");
        storage.AddRef();
        return new Tensor(storage, (int[])shape.Clone()) { Name = Name };
    }

    /// <summary>A copy with its own storage, recorded on the tape (gradient passes straight through).</summary>
    public Tensor Clone()
    {
        CheckAlive("Clone");
        var r = Empty(shape, Device);
        K.Copy(Buffer, 0, r.Buffer, 0, Size);
        return r.Record("clone", [this], g => [g]);
    }

    /// <summary>A view with another shape over the same storage (one dimension may be -1). Recorded on the tape.</summary>
    public Tensor Reshape(params int[] newShape)
    {
        CheckAlive("reshape");
        var s = (int[])newShape.Clone();
        int infer = -1;
        long known = 1;
        for (int i = 0; i < s.Length; i++)
        {
            if (s[i] == -1)
            {
                if (infer >= 0) throw new ArgumentException($"reshape: more than one -1 in {Autodiff.Shape.Format(newShape)}.");
                infer = i;
            }
            else if (s[i] < 0) throw new ArgumentException($"reshape: negative dimension in {Autodiff.Shape.Format(newShape)}.");
            else known *= s[i];
        }
        if (infer >= 0)
        {
            if (known == 0 || Size % known != 0)
                throw new ArgumentException($"reshape: cannot reshape {Describe()} ({Size} elements) to {Autodiff.Shape.Format(newShape)}.");
            s[infer] = (int)(Size / known);
        }
        if (Autodiff.Shape.Size(s) != Size)
            throw new ArgumentException($"reshape: cannot reshape {Describe()} ({Size} elements) to {Autodiff.Shape.Format(newShape)}.");
        storage.AddRef();
        var view = new Tensor(storage, s);
        var inShape = shape;
        return view.Record("reshape", [this], g => [g.Reshape(inShape)]);
    }

    /// <summary>
    /// Reverse-mode differentiation from this tensor. <paramref name="gradient"/> defaults to 1 for a one-element
    /// tensor. Gradients accumulate into the <see cref="Grad"/> of every leaf that requires them (call
    /// <see cref="ZeroGrad"/> or let the optimizer clear them between steps). With <paramref name="createGraph"/>,
    /// the backward pass is itself recorded, so the resulting gradients can be differentiated again.
    /// </summary>
    /// <param name="gradient">The output's gradient (default: 1 for a one-element output).</param>
    /// <param name="createGraph">Record the backward pass so the gradients can be differentiated again.</param>
    /// <param name="retainGraph">Keep the graph usable for another backward pass (default: <paramref name="createGraph"/>,
    /// as PyTorch's <c>retain_graph</c>). Without it a second backward pass through this graph throws instead of
    /// silently adding the same gradients again.</param>
    /// <exception cref="InvalidOperationException">The graph was already released by an earlier backward pass.</exception>
    public void Backward(Tensor? gradient = null, bool createGraph = false, bool? retainGraph = null)
    {
        CheckAlive("backward");
        if (!RequiresGrad)
            throw new InvalidOperationException($"backward: tensor {Describe()} does not require gradients (no input of its graph has RequiresGrad = true).");
        if (gradient == null)
        {
            if (Size != 1)
                throw new InvalidOperationException($"backward: a gradient can be implied only for a one-element output; {Describe()} has {Size} elements: pass one.");
            gradient = Ones(shape, Device);
        }
        else
        {
            Ops.CheckSameDevice("backward", this, gradient);
            if (!Autodiff.Shape.Equal(gradient.shape, shape))
                throw new ArgumentException($"backward: gradient shape {gradient.Describe()} differs from the output's {Describe()}.");
        }

        Autograd.RunBackward([this], [gradient], createGraph, retainGraph ?? createGraph, null);
    }

    /// <summary>Adds a leaf's incoming gradient to <see cref="Grad"/> (an engine-owned buffer, or a recorded sum under createGraph).</summary>
    internal void AccumulateGrad(Tensor g, bool createGraph)
    {
        if (createGraph)
        {
            var previous = Grad is { IsDisposed: false } live ? live : null; // a scope may have freed it
            Grad = previous == null ? g : previous + g;
            // An engine-owned buffer from an earlier plain pass is referenced by nothing else now (the sum's
            // backward needs only its shape): free it rather than leak device memory.
            if (previous is { Persistent: true }) previous.Dispose();
            return;
        }
        if (Grad == null || Grad.IsDisposed)
        {
            // Own copy: g may alias another tensor's gradient or an activation.
            var copy = Empty(shape, Device, track: false);
            copy.Persistent = true;
            K.Copy(g.Buffer, 0, copy.Buffer, 0, Size);
            Grad = copy;
        }
        else if (Grad.IsLeaf && Grad.Persistent)
        {
            K.Axpy(1f, g.Buffer, Grad.Buffer);
        }
        else
        {
            Grad = Grad + g;
        }
    }

    /// <summary>Drops the accumulated gradient.</summary>
    public void ZeroGrad()
    {
        if (Grad is { Persistent: true }) Grad.Dispose();
        Grad = null;
    }

    /// <summary>Releases this tensor's reference to its storage (freed when no view uses it).</summary>
    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        storage.Release();
    }
}
