#!/usr/bin/env bash
# Re-measures the benchmarks whose figures the README's Performance section quotes, each beside its baseline in the
# same run, with BenchmarkDotNet's default job (or --medium: its MediumRun job, 2 launches x 15 iterations after 10
# warm-ups, shorter and still a real job; never --job short, whose 3 iterations cannot separate noise from change).
#
#   bench/remeasure.sh [--medium | --dry] [--out DIR] [SET...]
#
# --dry runs BenchmarkDotNet's Dry job (one cold iteration) to check that the script and every class run; its figures
# mean nothing.
# SET: gemm skinny small elementwise colsum mlp mixer fno spn fft kronecker onnx multigrad (default: all of them). Results go to DIR
# (default bench/results/<UTC time>): environment.txt (CPU, load, commit, what the baselines run on), one folder per
# set with BenchmarkDotNet's reports (results/*-report-github.md is the table to quote) and its log, and
# multigrad.txt. Run it on a quiet machine and expect a long run (the default job picks each benchmark's iteration
# count until its error is small); the load average is recorded before and after each set so a noisy run shows.
set -euo pipefail

cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 MSBUILDDISABLENODEREUSE=1

job=()
job_name="default"
out=""
sets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --medium) job=(--job medium); job_name="medium (MediumRun: 2 launches, 10 warm-ups, 15 iterations)"; shift ;;
    --dry) job=(--job dry); job_name="dry (one cold iteration: a check of the script, not a measurement)"; shift ;;
    --out) out="$2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    -*) echo "remeasure.sh: unknown option '$1' (expected --medium, --dry, --out DIR, or set names)" >&2; exit 2 ;;
    *) sets+=("$1"); shift ;;
  esac
done
all=(gemm skinny small elementwise colsum mlp mixer fno spn fft kronecker onnx multigrad)
[ ${#sets[@]} -eq 0 ] && sets=("${all[@]}")

# The BenchmarkDotNet filter of each set: the classes whose rows the README quotes.
filter_of() {
  case "$1" in
    gemm) echo '*.GemmBenchmarks.*' ;;
    skinny) echo '*.SkinnyGemmBenchmarks.*' ;;
    small) echo '*.SmallGemmBenchmarks.*' ;;
    elementwise) echo '*.ElementwiseBenchmarks.*' ;;
    colsum) echo '*.ColumnSumBenchmarks.*' ;;
    mlp) echo '*.MlpStepBenchmarks.*' ;;
    mixer) echo '*.MixerStepBenchmarks.*' ;;
    fno) echo '*.FnoStepBenchmarks.*' ;;
    spn) echo '*.SpnStepBenchmarks.* *.SpnSumLayerBenchmarks.*' ;;
    fft) echo '*.FftBenchmarks.*' ;;
    kronecker) echo '*.KroneckerBenchmarks.*' ;;
    onnx) echo '*.OnnxForwardBenchmarks.*' ;;
    multigrad) echo '' ;;  # an interleaving harness, not a BenchmarkDotNet class
    *) echo "remeasure.sh: unknown set '$1' (expected one of: ${all[*]})" >&2; return 1 ;;
  esac
}
for s in "${sets[@]}"; do filter_of "$s" >/dev/null; done

out="${out:-bench/results/$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

load() { cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || uptime; }

dotnet build bench -c Release >"$out/build.log" 2>&1 || { echo "remeasure.sh: build failed, see $out/build.log" >&2; exit 1; }
run_bench() { dotnet run -c Release --no-build --project bench -- "$@"; }

{
  echo "date (UTC):   $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit:       $(git rev-parse HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "job:          $job_name"
  echo "cpu:          $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') x $(nproc)"
  echo "isa:          $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|fma|avx512f|avx512bw|avx512_bf16)$' | tr '\n' ' ')"
  echo "load average: $(load) (cores: $(nproc))"
  echo "dotnet:       $(dotnet --version)"
  echo "env:          ENGINE_CPU_THREADS=${ENGINE_CPU_THREADS-} ENGINE_SIMD_WIDTH=${ENGINE_SIMD_WIDTH-} OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-} OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS-}"
  run_bench baselines
} | tee "$out/environment.txt"

for s in "${sets[@]}"; do
  echo "== $s: load before $(load)" | tee -a "$out/environment.txt"
  if [ "$s" = multigrad ]; then
    # Each optimizer's step in turn per round, medians; the README quotes 25- and 40-round runs.
    run_bench multigrad-interleaved 40 2>&1 | tee "$out/multigrad.txt"
  else
    read -r -a filters <<<"$(filter_of "$s")"  # several globs for some sets, not expanded by the shell
    run_bench --filter "${filters[@]}" "${job[@]}" --buildTimeout 900 --artifacts "$out/$s" 2>&1 | tee "$out/$s.log" >/dev/null \
      || echo "== $s: BenchmarkDotNet failed, see $out/$s.log" | tee -a "$out/environment.txt"
  fi
  echo "== $s: load after $(load)" | tee -a "$out/environment.txt"
done

echo "Results in $out (tables: $out/*/results/*-report-github.md)"
