#!/usr/bin/env bash
# Session-5 prefill run on the device (binaries in .devgpu/): GEMM v18 (operands dequantized to BF16 +
# cuBLAS) against v15 and the default dispatch, M = 64 .. 8192 on Llama-3.1-8B shapes (every mix and
# the calibrated one), Llama-3.1-70B at M = 4096. Logs and JSON in $OUT/s5p_all.tgz.
source "$(dirname "$0")/device_env.sh"
MIX=calib-smollm2@5:0.635:0.352:e2m3
for m in ${S5P_MS:-64 128 256 1024 8192}; do
  timeout 150 $D/bench_gemm --kernels 0,15,18 --reps 10 --m $m --mix $MIX --json "$OUT/s5p_m$m.json" 2>&1 | grep -E "^\| |device" | grep -vE "^\|---" > "$OUT/s5p_m$m.txt"
done
[ "${S5P_70B:-1}" = 1 ] && timeout 150 $D/bench_gemm --model llama3.1-70b --kernels 0,15 --reps 5 --m 4096 --mix $MIX --json "$OUT/s5p_70b.json" 2>&1 | grep -E "^\| " | grep -vE "^\|---" > "$OUT/s5p_70b.txt"
(cd "$OUT" && tar czf s5p_all.tgz s5p_* && find . -name 's5p_*' ! -name s5p_all.tgz -delete)
