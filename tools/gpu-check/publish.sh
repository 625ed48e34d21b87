#!/usr/bin/env bash
# Builds the GPU check as a self-contained linux-x64 program (it runs where no .NET is installed), leaves out what the
# check never loads, and packs it as one xz-compressed tar, which must stay under 64 MiB: the most a GPU lease carries
# besides the working tree.
#
#   tools/gpu-check/publish.sh [ARCHIVE]      default ARCHIVE: out/gpu-check.tar.xz (out/ is ignored by git)
#
# On the GPU machine:
#   tar -xJf out/gpu-check.tar.xz -C /tmp && /tmp/gpu-check/Engine.GpuCheck check --out RESULTS
#   python3 tools/gpu-check/baselines.py --out RESULTS && /tmp/gpu-check/Engine.GpuCheck table --out RESULTS
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
archive="${1:-$root/out/gpu-check.tar.xz}"
limit=$((64 * 1024 * 1024))
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
app="$stage/gpu-check"

dotnet publish "$here/Engine.GpuCheck.csproj" -c Release -r linux-x64 --self-contained -o "$app" \
  -p:DebugType=none -p:GenerateDocumentationFile=false -p:SatelliteResourceLanguages=en

# Not used by the check: debugger and tracing support, the standalone garbage collectors, symbols, docs and the
# crash-dump helper (ONNX Runtime and the plotting libraries are test and bench dependencies, never published here).
rm -f "$app"/createdump "$app"/libmscordaccore.so "$app"/libmscordbi.so \
  "$app"/libcoreclrtraceptprovider.so "$app"/libclrgc.so "$app"/libclrgcexp.so
find "$app" \( -name '*.pdb' -o -name '*.xml' -o -name '*.dbg' \) -delete

mkdir -p "$(dirname "$archive")"
tar -C "$stage" -cf - gpu-check | xz -6 -T0 > "$archive"
size=$(stat -c %s "$archive")
unpacked=$(du -sb "$app" | cut -f1)
awk -v a="$archive" -v s="$size" -v u="$unpacked" 'BEGIN { printf "%s: %.1f MiB (unpacked %.1f MiB, limit 64 MiB)\n", a, s / 1048576, u / 1048576 }'
if [ "$size" -ge "$limit" ]; then
  echo "publish.sh: the archive is over 64 MiB; it cannot be carried to the GPU machine." >&2
  exit 1
fi
