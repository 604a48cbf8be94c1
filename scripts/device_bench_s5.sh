#!/usr/bin/env bash
# Session-5 decode benchmark on the device (binaries carried in .devgpu/): M = 1..16 on Llama-3.1-8B
# shapes, the row-major decode default (v8) and the prepared decode path v10 (f16 MMAs) / v11 (FP4
# blocks on int8 MMAs) in the same process as cuBLAS BF16 / cuBLASLt FP8, for all-MXFP4, all-MXFP8,
# 70/20/10 and the calibrated allocation; Llama-3.1-70B at M = 1.
#   bash scripts/device_bench_s5.sh   (logs and JSON in $OUT/s5_all.tgz; S5_MS="1 16" S5_70B=0 select parts)
source "$(dirname "$0")/device_env.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
MIX=calib-smollm2@5:0.635:0.352:e2m3  # SmolLM2-135M micromix@5 (bench/RESULTS.md)
for m in ${S5_MS:-1 2 4 8 16}; do
  timeout 150 $D/bench_gemm --kernels -1 --reps 25 --m $m --mix $MIX --json "$OUT/s5_m$m.json" 2>&1 | grep -E "^\| |device|copy" | grep -vE "^\|---" > "$OUT/s5_m$m.txt"
  grep -E "gemv|copy" "$OUT/s5_m$m.txt" | cut -c1-200
done
if [ "${S5_70B:-1}" = 1 ]; then
  timeout 150 $D/bench_gemm --model llama3.1-70b --kernels -1 --reps 10 --m 1 --mix $MIX --json "$OUT/s5_70b_m1.json" 2>&1 | grep -E "^\| " | grep -vE "^\|---" > "$OUT/s5_70b_m1.txt"
  grep -E "gemv" "$OUT/s5_70b_m1.txt" | cut -c1-200
fi
# At most 8 files come back from the device: one archive of everything.
(cd "$OUT" && tar czf s5_all.tgz s5_* && find . -name 's5_*' ! -name s5_all.tgz -delete)
