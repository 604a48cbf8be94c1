#!/usr/bin/env bash
# Runs on the GPU machine (device tool) from the repository root with binaries built on the CPU
# machine and carried in .devbuild/ (micromix, micromix_tests, lib/). The default model is too big
# for one transfer, so it arrives in three parts (.devx1..3), one call each:
#   bash scripts/device_check.sh part 1     (first call, carries .devbuild and .devx1)
#   bash scripts/device_check.sh part 2     (carries .devx2)
#   bash scripts/device_check.sh run        (carries .devx3): whole test suite on the GPU with the
#                                            model present, then scripts/compare_hf.py (SKIP_HF=1: not)
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
D=.devbuild
M=.devmodel
case "${1:-}" in
  part)
    mkdir -p "$M"
    if [ "$2" = 1 ]; then cat .devx1/* > "$M/model.part"; else cat ".devx$2"/* >> "$M/model.part"; fi
    ls -la "$M"
    exit 0 ;;
  run) ;;
  *) echo "usage: $0 part N | run"; exit 2 ;;
esac
cat .devx3/* >> "$M/model.part"
mkdir -p "$M/cache"
mv "$M/model.part" "$M/cache/SmolLM2-135M-Instruct.Q4_1.gguf"
sha256sum "$M/cache/SmolLM2-135M-Instruct.Q4_1.gguf"
[ -f "$D/lib/libopenblas.so.0" ] || xz -dc "$D/lib/libopenblas.so.0.xz" > "$D/lib/libopenblas.so.0"
export LD_LIBRARY_PATH="$PWD/$D/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
export MICROMIX_CACHE="$PWD/$M/cache" MICROMIX_CLI="$PWD/$D/micromix"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
echo "== whole test suite on the GPU machine"
timeout 400 "$D/micromix_tests" > "$OUT/tests.log" 2>&1
echo "micromix_tests rc=$?"
grep -E "^\[  (FAILED|PASSED|SKIPPED) |tests? from .* ran|Skipped|GPU test" "$OUT/tests.log" | head -40
if [ -n "${SKIP_HF:-}" ]; then exit 0; fi
echo "== transformers comparison"
timeout 400 python3 scripts/compare_hf.py --micromix "$D/micromix" --model "$MICROMIX_CACHE/SmolLM2-135M-Instruct.Q4_1.gguf" \
  --workdir /tmp/cmp > "$OUT/compare_hf.log" 2>&1
echo "compare_hf rc=$?"
tail -40 "$OUT/compare_hf.log"
