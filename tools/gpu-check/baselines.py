#!/usr/bin/env python3
"""PyTorch baselines for the GPU check's table (tools/gpu-check/Table.cs).

Measures, on the first CUDA device, in the same run as the check:
  - cuBLAS SGEMM (fp32, TF32 off) and TF32 GEMM at m = n = k = 1024, 2048, 4096 (GFLOP/s, 2 n^3 per product);
  - cuFFT rfft of 4096 rows of length 1024 along the last axis (ms per transform).
With --small the sizes are those of the check's --small run (GEMM 64 and 96, rfft 64 x 256).

Each figure is appended as one JSON line to OUT/baselines.jsonl as soon as it is measured, in the check's result format
{"Kind", "Name", "Value", "Unit", "Note"}: Kind "device" (Name "torch"), "baseline" (Names "sgemm N", "tf32 N",
"rfft RxL") or "note" (why a figure is missing). Needs only PyTorch; never writes NaN (the check's reader skips it).

    python3 tools/gpu-check/baselines.py --out RESULTS [--small]
"""
import argparse
import json
import os
import sys


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="the check's result folder")
    parser.add_argument("--small", action="store_true", help="the sizes of the check's --small run")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "baselines.jsonl")

    def add(kind, name, value, unit, note=None):
        record = {"Kind": kind, "Name": name, "Value": float(value), "Unit": unit, "Note": note}
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        print(f"[{kind}] {name}: {value:.4g} {unit}" + (f"  ({note})" if note else ""), flush=True)

    try:
        import torch
    except ImportError as e:
        add("note", "torch", 0, "", f"no PyTorch ({e}); no baselines")
        return 0
    if not torch.cuda.is_available():
        add("note", "torch", 0, "", f"PyTorch {torch.__version__} finds no CUDA device; no baselines")
        return 0

    device = torch.device("cuda", 0)
    props = torch.cuda.get_device_properties(device)
    add("device", "torch", 0, "",
        f"{props.name}: PyTorch {torch.__version__}, CUDA {torch.version.cuda}, cuBLAS and cuFFT through PyTorch")

    def ms_per_call(fn, min_seconds=0.2):
        """One warm-up call, then batches of doubling size until one takes min_seconds; the best of three batches."""
        fn()
        torch.cuda.synchronize()
        best, reps = float("inf"), 1
        for _ in range(3):
            while True:
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                for _ in range(reps):
                    fn()
                end.record()
                end.synchronize()
                ms = start.elapsed_time(end)
                if ms >= min_seconds * 1e3:
                    break
                reps *= 2
            best = min(best, ms / reps)
        return best

    def set_tf32(on):
        matmul = torch.backends.cuda.matmul
        if hasattr(matmul, "fp32_precision"):
            matmul.fp32_precision = "tf32" if on else "ieee"
        else:
            matmul.allow_tf32 = on

    for n in ([64, 96] if args.small else [1024, 2048, 4096]):
        try:
            gen = torch.Generator(device=device).manual_seed(n)
            a = torch.randn(n, n, device=device, generator=gen)
            b = torch.randn(n, n, device=device, generator=gen)
            c = torch.empty(n, n, device=device)
            for tf32 in (False, True):
                set_tf32(tf32)
                ms = ms_per_call(lambda: torch.mm(a, b, out=c))
                add("baseline", f"{'tf32' if tf32 else 'sgemm'} {n}", 2.0 * n ** 3 / (ms * 1e-3) / 1e9, "GFLOP/s",
                    "cuBLAS through torch.mm, " + ("TF32 tensor cores" if tf32 else "fp32 (TF32 off)"))
        except Exception as e:  # a failed size must not cost the others
            add("note", f"gemm {n}", 0, "", f"GEMM {n} failed: {type(e).__name__}: {e}")
        finally:
            set_tf32(False)

    rows, length = (64, 256) if args.small else (4096, 1024)
    try:
        x = torch.randn(rows, length, device=device, generator=torch.Generator(device=device).manual_seed(1))
        ms = ms_per_call(lambda: torch.fft.rfft(x, dim=-1))
        add("baseline", f"rfft {rows}x{length}", ms, "ms", "cuFFT through torch.fft.rfft, batch of rows, real to n/2+1 bins")
    except Exception as e:
        add("note", f"rfft {rows}x{length}", 0, "", f"rfft failed: {type(e).__name__}: {e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
