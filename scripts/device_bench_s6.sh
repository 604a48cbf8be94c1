#!/usr/bin/env bash
# Session-6 runs on the device (binaries in .devgpu/), in the same process as cuBLAS BF16 and
# cuBLASLt FP8 (every mix and the calibrated one, Llama-3.1-8B shapes unless noted):
#   bash scripts/device_bench_s6.sh [comma list of parts]   (default tests,prefill,decode,70b)
#   tests    the GPU tests (CudaMx*, MxMixed*)
#   sanitize compute-sanitizer memcheck and racecheck (scripts/device_gpu.sh's filters)
#   prefill  M = 64 .. 8192 (S6_MS), GEMM versions 0 (default), 15, 18 and v18 on prepared weights
#   decode   M = 1, 2, 4, 8, 16: the decode paths (row-major default, prepared v10 / v11)
#   70b      Llama-3.1-70B: decode at M = 1, prefill at M = 4096
# Logs and JSON in $OUT/s6_<parts>.tgz (one archive: at most 8 files come back).
source "$(dirname "$0")/device_env.sh"
parts=${1:-tests,prefill,decode,70b}
has() { [[ ",$parts," == *",$1,"* ]]; }
MIX=calib-smollm2@5:0.635:0.352:e2m3
if has tests; then
  timeout 300 $D/micromix_tests --gtest_filter='CudaMx*:MxMixed*' > "$OUT/s6_tests.log" 2>&1
  echo "tests rc=$?"; grep -E "^\[  (FAILED|PASSED) |Failure" "$OUT/s6_tests.log" | head -20
fi
if has sanitize; then
  DEVBUILD=$D OUT=$OUT bash "$(dirname "$0")/device_gpu.sh" sanitize > "$OUT/s6_sanitize.txt" 2>&1
  grep -E "rc=|SUMMARY" "$OUT/s6_sanitize.txt"
  mv "$OUT/memcheck.log" "$OUT/s6_memcheck.log"; mv "$OUT/racecheck.log" "$OUT/s6_racecheck.log"; rm -f "$OUT/gpu.txt"
fi
if has prefill; then
  for m in ${S6_MS:-64 128 256 512 1024 2048 4096 8192}; do
    timeout 150 $D/bench_gemm --kernels ${S6_KERNELS:-0,15,18} --reps 10 --m $m --mix $MIX --json "$OUT/s6_m$m.json" 2>&1 | grep -E "^\| |device" | grep -vE "^\|---" > "$OUT/s6_m$m.txt"
    echo "prefill M=$m rc=$?"
  done
fi
if has decode; then
  for m in 1 2 4 8 16; do
    timeout 150 $D/bench_gemm --kernels -1 --reps 25 --m $m --mix $MIX --json "$OUT/s6_d$m.json" 2>&1 | grep -E "^\| |device" | grep -vE "^\|---" > "$OUT/s6_d$m.txt"
    echo "decode M=$m rc=$?"
  done
fi
if has 70b; then
  timeout 150 $D/bench_gemm --model llama3.1-70b --kernels -1 --reps 10 --m 1 --mix $MIX --json "$OUT/s6_70b_m1.json" 2>&1 | grep -E "^\| " | grep -vE "^\|---" > "$OUT/s6_70b_m1.txt"
  timeout 200 $D/bench_gemm --model llama3.1-70b --kernels 0,15,18 --reps 5 --m 4096 --mix $MIX --json "$OUT/s6_70b_m4096.json" 2>&1 | grep -E "^\| " | grep -vE "^\|---" > "$OUT/s6_70b_m4096.txt"
  echo "70b rc=$?"
fi
tag=$(echo "$parts" | tr ',' '_')
(cd "$OUT" && tar czf "s6_$tag.tgz" s6_*.txt s6_*.json s6_*.log 2>/dev/null; find . -name 's6_*' ! -name 's6_*.tgz' -delete)
