#!/usr/bin/env bash
# Session-4 benchmark run on the device (binaries carried in .devgpu/): prefill M = 64..8192 with the
# default dispatch, v12 and v15 on Llama-3.1-8B shapes (70/20/10, all-MXFP4, all-MXFP8 and the
# calibrated allocation), Llama-3.1-70B at M = 4096 (default dispatch), the fused quantizers.
#   bash scripts/device_bench_s4.sh   (logs and JSON in $OUT/s4_all.tgz; S4_MS="64 8192" S4_70B=0
#   S4_FUSED=0 select parts)
source "$(dirname "$0")/device_env.sh"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"
# SmolLM2-135M micromix@5 (bench/RESULTS.md): MAC-weighted MXFP4 / MXFP6 shares, FP6 as E2M3.
MIX=calib-smollm2@5:0.635:0.352:e2m3
for m in ${S4_MS:-64 256 1024 4096 8192}; do
  timeout 150 $D/bench_gemm --kernels 0,12,15 --reps 10 --m $m --mix $MIX --json "$OUT/s4_m$m.json" 2>&1 | grep -E "^\| |device" | grep -vE "^\|---" > "$OUT/s4_m$m.txt"
  tail -n +2 "$OUT/s4_m$m.txt" | grep -E "default|v12|v15|quantize" | cut -c1-190
done
[ "${S4_70B:-1}" = 1 ] && timeout 150 $D/bench_gemm --model llama3.1-70b --kernels 0 --reps 5 --m 4096 --mix $MIX --json "$OUT/s4_70b.json" 2>&1 | grep -E "^\| " | grep -vE "^\|---" > "$OUT/s4_70b.txt"
[ "${S4_70B:-1}" = 1 ] && grep -E "default|quantize" "$OUT/s4_70b.txt" | cut -c1-190
[ "${S4_FUSED:-1}" = 1 ] && timeout 90 $D/bench_fused_quantize --benchmark_min_time=0.2 2>&1 | grep -E "^BM_" | tee "$OUT/s4_fused.txt"
# At most 8 files come back from the device: one archive of everything.
(cd "$OUT" && tar czf s4_all.tgz s4_* && find . -name 's4_*' ! -name s4_all.tgz -delete)
