namespace Engine.Tests;

/// <summary>
/// Tests that read a device's counters (allocations, bytes in use, launches, host copies): they run alone, after the
/// parallel tests, so no other test's work shows up in their before/after differences.
/// </summary>
[CollectionDefinition("serial", DisableParallelization = true)]
public sealed class SerialCollection { }
