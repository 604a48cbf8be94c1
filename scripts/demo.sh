#!/usr/bin/env bash
# The main job on the built-in default: install deps, build, download SmolLM2-135M-Instruct,
# calibrate MicroMix on Debian's `fortunes` texts, evaluate every scheme against the float
# baseline on Moby-Dick (or, without ../shared, the GPL-3 text every Debian system carries),
# and print the accuracy table. Extra arguments go to `micromix eval`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
bash scripts/build.sh >/dev/null
mkdir -p results
calib=results/calib-fortunes.txt
cat /usr/share/games/fortunes/*.u8 > "$calib"
text=../shared/data/text/eval/moby-dick.txt
[ -f "$text" ] || text=/usr/share/common-licenses/GPL-3
json="results/eval-$(date -u +%Y%m%dT%H%M%SZ).json"
./build/micromix eval --calib "$calib" --text "$text" --json "$json" "$@"
echo "table also written to $json"
