#!/usr/bin/env bash
# Opens the main command's report page (OUT/index.html) in a real headless browser (Debian's chromium), checks that
# every task section is there and every figure loaded, and takes a screenshot (OUT/index-screenshot.png) to look at.
#
#   dotnet run -c Release --project samples -- all --out out
#   scripts/check-report.sh out            # apt-get install -y chromium, once
#
# Exit status: 0 when the page passed, 1 when it did not, 2 when the page or the browser is missing.
set -euo pipefail
out="${1:-out}"
tasks="${2:-mlp mixer mixer-width gr-diagonal spn fno-burgers fno-darcy}"
if [ ! -f "$out/index.html" ]; then
  echo "check-report: no $out/index.html; run the main command first" >&2
  exit 2
fi
page="file://$(cd "$out" && pwd)/index.html"
browser="$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)"
if [ -z "$browser" ]; then
  echo "check-report: no chromium found (apt-get install -y chromium)" >&2
  exit 2
fi
flags=(--headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update --no-first-run
       --hide-scrollbars --virtual-time-budget=15000)

# The page's script writes data-images-loaded="loaded/total" on <body> once everything has loaded.
dom="$("$browser" "${flags[@]}" --dump-dom "$page" 2>/dev/null)"
loaded="$(grep -o 'data-images-loaded="[^"]*"' <<<"$dom" | head -1 | cut -d'"' -f2)"
broken="$(grep -o 'data-images-broken="[^"]*"' <<<"$dom" | head -1 | cut -d'"' -f2)"
status=0
if [[ ! "$loaded" =~ ^([0-9]+)/([0-9]+)$ ]] || [ "${BASH_REMATCH[1]}" != "${BASH_REMATCH[2]}" ] || [ "${BASH_REMATCH[2]}" = 0 ]; then
  echo "check-report: images loaded: '${loaded:-none}'; broken: ${broken:-none}" >&2
  status=1
fi
for task in $tasks; do
  if ! grep -q "id=\"task-$task\"" <<<"$dom"; then
    echo "check-report: no section for task $task" >&2
    status=1
  fi
done

shot="$out/index-screenshot.png"
"$browser" "${flags[@]}" --window-size=1366,9000 --screenshot="$(cd "$out" && pwd)/index-screenshot.png" "$page" >/dev/null 2>&1
if [ ! -s "$shot" ]; then
  echo "check-report: no screenshot written" >&2
  status=1
fi
[ "$status" = 0 ] && echo "check-report: $loaded images loaded, every task has its section; screenshot $shot"
exit "$status"
