#!/usr/bin/env bash
# Screenshot an HTML report (`vidattack evaluate` or `vidattack campaign report`) in headless Chromium,
# to check that it opens in a real browser and that every plot renders.
#
#   scripts/screenshot_report.sh OUT/report.html [report.png] [WIDTHxHEIGHT]
#
# Chromium from the system's packages (Debian: `apt-get install -y chromium`). The report is
# self-contained (plots are inline base64 PNGs), so no server is needed. Also prints how many <img>
# elements the page holds and how many of them decoded (naturalWidth > 0), read from the DOM Chromium
# built (--dump-dom after a script marks each image).
set -euo pipefail
html=${1:?usage: screenshot_report.sh REPORT.html [OUT.png] [WIDTHxHEIGHT]}
png=${2:-${html%.html}.png}
size=${3:-1280x2400}
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [[ -z "$browser" ]]; then
    echo "no Chromium found: apt-get install -y chromium" >&2
    exit 2
fi
html=$(realpath "$html")
flags=(--headless --no-sandbox --disable-gpu --hide-scrollbars --virtual-time-budget=5000)
"$browser" "${flags[@]}" --screenshot="$png" --window-size="${size/x/,}" "file://$html" 2>/dev/null
echo "wrote $png ($size)"
# Count rendered images: a copy of the page with a script that writes each image's decoded width.
probe=$(mktemp --suffix=.html)
trap 'rm -f "$probe"' EXIT
sed 's#</body>#<script>window.addEventListener("load",()=>{const i=[...document.images];document.title="images "+i.length+" decoded "+i.filter(x=>x.complete\&\&x.naturalWidth>0).length;});</script></body>#' "$html" > "$probe"
title=$("$browser" "${flags[@]}" --dump-dom "file://$probe" 2>/dev/null | grep -o '<title>[^<]*</title>' | head -1)
echo "${title:-<title>?</title>}" | sed 's#</\?title>##g'
