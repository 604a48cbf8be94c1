#!/usr/bin/env bash
# Session-6 A/B of the scratch pool on the device (binaries in .devgpu/): the same binary with the
# pool keeping its memory (default) and with MICROMIX_SCRATCH_KEEP_MB=0 (the CUDA default pool's
# behaviour before session 6: memory handed back at every synchronization), alternating, on GEMM v18
# (o, M = 8192 and 1024) and the decode path (gate_up and o, M = 1); then prefill M = 64 / 128 again
# (cells that read 2-3x slow in the session's main run). Output: $OUT/s6_ab.txt.
source "$(dirname "$0")/device_env.sh"
run() { timeout 100 $D/bench_gemm "$@" 2>&1 | grep -E "^\| " | grep -E "70/20/10 (default|v18|gemv v11)|^\| (qkv|o|gate_up|down) \| [0-9]+ \| [0-9]+ \| [0-9]+ \| [0-9.]+ \| [0-9.]+ \| 70/20/10 default"; }
for round in 1 2; do
  for keep in default 0; do
    echo "== round $round keep=$keep"
    if [ $keep = default ]; then e="env -u MICROMIX_SCRATCH_KEEP_MB"; else e="env MICROMIX_SCRATCH_KEEP_MB=0"; fi
    $e $D/bench_gemm --only o --m 8192 --kernels 18 --reps 10 2>&1 | grep -E "70/20/10 v18" | cut -c1-160
    $e $D/bench_gemm --only o --m 1024 --kernels 18 --reps 10 2>&1 | grep -E "70/20/10 v18" | cut -c1-160
    $e $D/bench_gemm --only gate_up --m 1 --kernels -1 --reps 25 2>&1 | grep -E "70/20/10 gemv v11" | cut -c1-160
    $e $D/bench_gemm --only o --m 1 --kernels -1 --reps 25 2>&1 | grep -E "70/20/10 gemv v11" | cut -c1-160
  done
done | tee "$OUT/s6_ab.txt"
for m in 64 128; do $D/bench_gemm --m $m --kernels 0,15,18 --reps 10 2>&1 | grep -E "70/20/10 (default|v15|v18)" | cut -c1-150; done | tee -a "$OUT/s6_ab.txt"
