#!/usr/bin/env bash
# PNG screenshot of a langshift report page with headless Chromium (apt-get install chromium), to look at
# what a person sees:  bash scripts/screenshot_report.sh RUN/report/report/index.html out.png [WIDTHxHEIGHT]
set -euo pipefail
page=$(realpath "$1"); png=$2; size=${3:-1280x1800}
profile=$(mktemp -d); trap 'rm -rf "$profile"' EXIT
chromium --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update \
  --disable-sync --no-first-run --user-data-dir="$profile" --window-size="${size/x/,}" \
  --screenshot="$png" "file://$page" 2>/dev/null
test -s "$png" && echo "$png"
