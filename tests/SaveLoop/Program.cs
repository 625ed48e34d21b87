using Engine.Checkpoints;
using Engine.Kernels;
using Engine.Nn;

// Saves model A, then B, then A, ... to args[0] until killed; prints "saved N" after each complete save so the
// parent knows when the target exists and roughly where in the loop it kills.
if (args.Length != 1)
{
    Console.Error.WriteLine("usage: SaveLoop <path>");
    return 2;
}
using var a = SaveLoopModels.Create(1);
using var b = SaveLoopModels.Create(2);
for (long i = 1; ; i++)
{
    Checkpoint.Save(i % 2 == 1 ? a : b, args[0]);
    Console.Out.WriteLine($"saved {i}");
    Console.Out.Flush();
}

/// <summary>The two models the loop alternates between (the test builds the same ones to recognise them).</summary>
public static class SaveLoopModels
{
    /// <summary>A 512-1024-16 MLP (about 2 MB of weights), so a save spends most of its time writing.</summary>
    public static Sequential Create(ulong seed) =>
        new(new Linear(512, 1024, seed: seed, device: Device.Cpu), new ReLU(), new Linear(1024, 16, seed: seed + 100, device: Device.Cpu));
}
