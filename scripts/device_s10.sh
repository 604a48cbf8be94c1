#!/usr/bin/env bash
# Session-10 runs on the device (binaries in .devgpu/), issue 5, decode at M = 1. The decode variants
# measured this session and removed (a per-lane cp.async ring, bulk-copy super-group CTAs, L2 prefetches,
# batches of 3 at 5 CTAs per SM, merged segment tails) ran as bench_gemm --m 1 [--model llama3.1-70b]
# --kernels -1 next to v14, or through the ab part below with their build as the new binary
# (bench/GPU_NOTES.md, session 10).
#   bash scripts/device_s10.sh [comma list of parts]
#   stream    bench_decode_stream (the decode GEMV's memory side alone) on gate_up (70/20/10, all-MXFP4),
#             down and o, then bench_gemm's M = 1 decode rows of the 8B layers in the same call
#   tests     all GPU tests (CudaMx*, MxMixed*)
#   sanitize  compute-sanitizer memcheck and racecheck on the prepared decode tests
#   math      bench_decode_stream with stand-in arithmetic per block (pattern-u4+X), gate_up and down
#   ab        bench_gemm at M = 1, .devgpu/bench_gemm_old and the new build alternating (8B two rounds, 70B one),
#             then the new binary alone at M = $S10_MS (if set)
#   tailncu   ncu stall samples and L2 hits of the M = 1 pre-pass-path kernel, gate_up, 128 / 0 and 120 / 8 FP4 / FP6
#             blocks (not yet run: the question left open in GPU_NOTES session 10)
source "$(dirname "$0")/device_env.sh"
parts=${1:-tests,math}
has() { [[ ",$parts," == *",$1,"* ]]; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
if has stream; then
  $D/bench_decode_stream 2>&1 | tee "$OUT/s10_stream_gateup.txt"
  $D/bench_decode_stream --blocks 128,0,0 2>&1 | tee "$OUT/s10_stream_gateup_fp4.txt"
  $D/bench_decode_stream --n 4096 --blocks 314,90,44 2>&1 | tee "$OUT/s10_stream_down.txt"
  $D/bench_decode_stream --n 4096 --blocks 90,25,13 2>&1 | tee "$OUT/s10_stream_o.txt"
  timeout 200 $D/bench_gemm --m 1 --kernels -1 --reps 25 --no-default-mixes --mix 70/20/10:0.7:0.2 > "$OUT/s10_dec_m1.txt" 2>&1
  grep -E "gate_up|down|qkv|o " "$OUT/s10_dec_m1.txt" | head -20
fi
if has math; then
  $D/bench_decode_stream --rounds 9 2>&1 | tee "$OUT/s10_math_gateup.txt"
  $D/bench_decode_stream --rounds 9 --n 4096 --blocks 314,90,44 2>&1 | tee "$OUT/s10_math_down.txt"
fi
has tests && run_gpu_tests s10
has sanitize && run_sanitizers s10 'CudaMxMixedGemv.OneTokenPrePassLongK:CudaMxMixedGemv.OddSegmentMixes:CudaMxMixedGemm.EmptyKWritesZeros' 'CudaMxMixedGemv.OneTokenPrePassLongK:CudaMxMixedGemv.OddSegmentMixes'
if has ab; then  # M = 1 decode, the previous build (.devgpu/bench_gemm_old) and this one alternating, two rounds; 70B one round
  for round in 1 2; do
    for b in old new; do
      exe=$D/bench_gemm; [ $b = old ] && exe=$D/bench_gemm_old
      timeout 200 $exe --m 1 --kernels -1 --reps 25 --mix calib-smollm2@5:0.635:0.352:e2m3 --json "$OUT/s10_ab_${b}_r$round.json" > "$OUT/s10_ab_${b}_r$round.txt" 2>&1
      echo "== $b round $round rc=$?"; grep -E "gemv v1[46]" "$OUT/s10_ab_${b}_r$round.txt" | grep -E "70/20/10|calib" | awk -F'|' '{print $2, $8, $9}' | sed 's/ prepared weights ([^)]*)//' | paste - - - -
    done
  done
  for b in old new; do
    exe=$D/bench_gemm; [ $b = old ] && exe=$D/bench_gemm_old
    timeout 200 $exe --model llama3.1-70b --m 1 --kernels -1 --reps 25 --no-default-mixes --mix 70/20/10:0.7:0.2 > "$OUT/s10_ab70_${b}.txt" 2>&1
    echo "== 70B $b rc=$?"; grep -E "gemv v1[46]" "$OUT/s10_ab70_${b}.txt" | awk -F'|' '{print $2, $8, $9}' | sed 's/ prepared weights ([^)]*)//' | paste - - - -
  done
  for m in ${S10_MS:-}; do  # the new binary alone at other M (its v14 and v16 rows side by side)
    timeout 200 $D/bench_gemm --m $m --kernels -1 --reps 25 --no-default-mixes --mix 70/20/10:0.7:0.2 > "$OUT/s10_ab_m$m.txt" 2>&1
    echo "== M=$m rc=$?"; grep -E "gemv v1[46]" "$OUT/s10_ab_m$m.txt" | awk -F'|' '{print $2, $8, $9}' | sed 's/ prepared weights ([^)]*)//' | paste - - - -
  done
fi
if has tailncu; then  # what a one-block FP6 tail costs: ncu stall samples and L2 hits, gate_up M = 1, 128 / 0 and 120 / 8 FP4 / FP6 blocks
  S="--section SpeedOfLight --section MemoryWorkloadAnalysis --section SchedulerStats --section WarpStateStats --section InstructionStats"
  for mix in e128-0:1:0 f120-8:0.9375:0.0625; do
    timeout 300 ncu $S --metrics smsp__pcsamp_warps_issue_stalled_long_scoreboard,smsp__pcsamp_warps_issue_stalled_no_instructions,smsp__pcsamp_warps_issue_stalled_wait,smsp__pcsamp_warps_issue_stalled_short_scoreboard,smsp__pcsamp_warps_issue_stalled_barrier,smsp__pcsamp_warps_issue_stalled_selected,smsp__pcsamp_warps_issue_stalled_not_selected,smsp__pcsamp_warps_issue_stalled_math_pipe_throttle,smsp__pcsamp_warps_issue_stalled_lg_throttle \
      --kernel-name-base mangled -k regex:gemv_fragILi1ELb1ELb0ELi2E --launch-skip 3 --launch-count 1 \
      $D/bench_gemm --m 1 --only gate_up --kernels -1 --reps 1 --no-default-mixes --mix $mix > "$OUT/s10_tailncu_${mix%%:*}.txt" 2>&1
    echo "ncu $mix rc=$?"; grep -E "Duration|DRAM Throughput|L2 Hit Rate|Issued Warp Per|Executed Instructions  |pcsamp" "$OUT/s10_tailncu_${mix%%:*}.txt" | head -20
  done
fi
