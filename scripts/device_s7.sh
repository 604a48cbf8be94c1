#!/usr/bin/env bash
# Session-7 runs on the device (binaries in .devgpu/): the prepared decode path's v13 (row groups per
# CTA, FP4 blocks on bf16 MMAs with folded scales) against v12 and the baselines, same process.
#   bash scripts/device_s7.sh [comma list of parts]
#   tests     the GPU tests (CudaMx*, MxMixed*)
#   sanitize  compute-sanitizer memcheck and racecheck on the decode tests
#   rows      M = 1 .. 128 (S7_MS): prepared v10-v13, default dispatches, cuBLAS BF16 / cuBLASLt FP8
#   rg        v13 with 1, 2, 4, 8 row groups per CTA (MICROMIX_GEMV_RG) at M = S7_RG_MS
#   pf        (session 7 A/B, code since removed) v13 with and without an in-loop L2 prefetch
#   var       (session 7 A/B, code since removed) the rows kernel's variants (MICROMIX_ROWS_VARIANT)
#   70b       Llama-3.1-70B at M = 16, 32, 64: the same kernels
#   ncu       ncu on v13's rows kernel (70/20/10): gate_up at M = 64 (8 row groups per CTA), o at M = 32
# Logs and JSON in $OUT/s7_<parts>.tgz.
source "$(dirname "$0")/device_env.sh"
parts=${1:-tests,rows}
has() { [[ ",$parts," == *",$1,"* ]]; }
MIX=calib-smollm2@5:0.635:0.352:e2m3
has tests && run_gpu_tests s7
has sanitize && run_sanitizers s7 'CudaMxMixedGemv.*' 'CudaMxMixedGemv.PreparedVersions*'
if has rows; then
  for m in ${S7_MS:-1 8 16 32 64 128}; do
    timeout 150 $D/bench_gemm --kernels -1 --reps 20 --m $m --mix $MIX --json "$OUT/s7_r$m.json" 2>&1 | grep -E "^\| |device" | grep -vE "^\|---" > "$OUT/s7_r$m.txt"
    echo "rows M=$m rc=$?"
  done
fi
if has rg; then
  for m in ${S7_RG_MS:-16 64}; do
    for rg in 1 2 4 8; do
      MICROMIX_GEMV_RG=$rg timeout 150 $D/bench_gemm --kernels -1 --reps 20 --m $m > "$OUT/s7_rg${rg}_m$m.txt" 2>&1
      echo "rg=$rg M=$m rc=$?"
    done
  done
fi
if has 70b; then
  for m in 16 32 64; do
    timeout 200 $D/bench_gemm --model llama3.1-70b --kernels -1 --reps 10 --m $m --mix $MIX --json "$OUT/s7_70b_m$m.json" 2>&1 | grep -E "^\| " | grep -vE "^\|---" > "$OUT/s7_70b_m$m.txt"
    echo "70b M=$m rc=$?"
  done
fi
# ab_env VAR TAG VALUES: bench_gemm at M = 32, 64 with env VAR set to each value in turn, two rounds.
ab_env() {
  for round in 1 2; do
    for v in $3; do
      for m in 32 64; do
        env "$1=$v" timeout 150 $D/bench_gemm --kernels -1 --reps 20 --m $m > "$OUT/s7_$2${v}_m${m}_r$round.txt" 2>&1
        echo "$2=$v M=$m round $round rc=$?"
      done
    done
  done
}
has var && ab_env MICROMIX_ROWS_VARIANT var "0 1 2"  # v13 rows-kernel variants
has pf && ab_env MICROMIX_GEMV_L2PF pf "1 0"         # in-loop L2 prefetch on / off
if has ncu; then
  S="--section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats --section MemoryWorkloadAnalysis --section SchedulerStats --section InstructionStats"
  ncu_run() {  # layer M kernel-regex; --launch-skip 20: the first launch of the third mix (70/20/10)
    echo "=== $1 M=$2 $3" >> "$OUT/s7_ncu.txt"
    timeout 200 ncu $S --kernel-name-base mangled -k regex:$3 --launch-skip 20 --launch-count 1 \
      $D/bench_gemm --kernels -1 --reps 1 --m $2 --only $1 >> "$OUT/s7_ncu.txt" 2>&1
  }
  ncu_run gate_up 64 gemv_rowsILi4ELi8E
  ncu_run o 32 gemv_rowsILi4ELi1E
  grep -E "===|Duration|DRAM Throughput|Memory Throughput|Achieved Occupancy|Registers Per|Issue Slots Busy|No Eligible|Warp Cycles Per Issued|Executed Ipc|Grid Size|L2 Hit|Stall|Block Limit|Executed Instructions " "$OUT/s7_ncu.txt" | head -80
fi
tag=$(echo "$parts" | tr ',' '_')
(cd "$OUT" && tar czf "s7_$tag.tgz" s7_*.txt s7_*.json s7_*.log 2>/dev/null; find . -name 's7_*' ! -name 's7_*.tgz' -delete)
