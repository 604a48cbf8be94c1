#!/usr/bin/env bash
# Session-11 runs on the device (binaries in .devgpu/), issue 5, decode.
#   bash scripts/device_s11.sh [comma list of parts]
#   tests     all GPU tests (CudaMx*, MxMixed*)
#   sanitize  compute-sanitizer memcheck and racecheck on the prepared decode tests
#   ab        bench_gemm at M = 1 (8B two rounds, 70B one) and M = $S11_MS: v14 and v17 are rows of one process
#   warps     v14 and v17 rows at M = 1 (8B: 70/20/10 and the calibrated mix; 70B: 70/20/10) with v17's warps
#             per row group by its rule and forced (MICROMIX_GEMV_WARPS; S11_SHAPES, S11_ROUNDS), two rounds
#   tail      v17 with its tail batches as 3 slots (v14's) or exact code (MICROMIX_GEMV_TAIL), M = 1, 8B two rounds, 70B
#   abold     .devgpu/bench_gemm_old (previous build) and the new one alternating: v17 rows, M = 1 (8B, 70B), M = 16
#   split     v17 with segment-specialised warps off / on (MICROMIX_GEMV_SPLIT = k / seg), M = 1, 8B two rounds, 70B
#   qwen      v14 and v17 rows at M = 1 on Qwen2.5-7B / 32B shapes (70/20/10)
#   tailncu   ncu stall samples and L2 hits of the M = 1 pre-pass-path kernel (gate_up): v14 at 128 / 0 and
#             120 / 8 FP4 / FP6 blocks, v16 at 120 / 8
TAG=s11
source "$(dirname "$0")/device_env.sh"
parts=${1:-tests,ab}
has() { [[ ",$parts," == *",$1,"* ]]; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
M1="--m 1 --kernels -1 --reps 25"
MIX="--no-default-mixes --mix 70/20/10:0.7:0.2"
CAL="--mix calib-smollm2@5:0.635:0.352:e2m3"
B70="--model llama3.1-70b"
has tests && run_gpu_tests s11
has sanitize && run_sanitizers s11 'CudaMxMixedGemv.WarpsPerRowGroup:CudaMxMixedGemv.OneTokenPrePassLongK:CudaMxMixedGemv.OddSegmentMixes:CudaMxMixedGemm.EmptyKWritesZeros' 'CudaMxMixedGemv.WarpsPerRowGroup:CudaMxMixedGemv.OddSegmentMixes'
if has ab; then
  for round in 1 2; do bench ab_r$round "gemv v1[47]" -- $M1 $CAL --json "$OUT/s11_ab_r$round.json"; done
  bench ab70 "gemv v1[47]" -- $B70 $M1 $MIX
  for m in ${S11_MS:-}; do bench ab_m$m "gemv v1[47]" -- --m $m --kernels -1 --reps 25 $MIX; done
fi
if has warps; then  # shapes WxG: W warps per row group, G row groups per CTA (GROUPS: the session's first builds); "rule" = v17's own choice
  for round in ${S11_ROUNDS:-1 2}; do
    for sh in ${S11_SHAPES:-rule 1x1 2x1 4x1 8x1 16x1}; do
      e=(); [ $sh != rule ] && e=(MICROMIX_GEMV_WARPS=${sh%x*} MICROMIX_GEMV_GROUPS=${sh#*x})
      bench w${sh}_r$round "gemv v1[47]" "${e[@]}" -- $M1 $MIX $CAL
      bench w${sh}_70_r$round "gemv v1[47]" "${e[@]}" -- $B70 $M1 $MIX
    done
  done
fi
if has tail; then  # v17 with MICROMIX_GEMV_TAIL = slots / exact alternating (v14 rows: the in-process reference)
  for round in 1 2; do
    for t in slots exact; do bench tail_${t}_r$round "gemv v1[47]" MICROMIX_GEMV_TAIL=$t -- $M1 $CAL; done
  done
  for t in slots exact; do bench tail70_$t "gemv v1[47]" MICROMIX_GEMV_TAIL=$t -- $B70 $M1 $MIX; done
fi
if has abold; then  # the previous build (.devgpu/bench_gemm_old) and this one alternating: 8B M = 1 two rounds, 70B and M = 16 one
  for round in 1 2; do
    for b in old new; do
      exe=$D/bench_gemm; [ $b = old ] && exe=$D/bench_gemm_old
      EXE=$exe bench abold_${b}_r$round "gemv v17" -- $M1 $MIX $CAL
    done
  done
  for b in old new; do
    exe=$D/bench_gemm; [ $b = old ] && exe=$D/bench_gemm_old
    EXE=$exe bench abold70_$b "gemv v17" -- $B70 $M1 $MIX
    EXE=$exe bench abold16_$b "gemv v1[47]" -- --m 16 --kernels -1 --reps 25 $MIX
  done
fi
if has split; then  # v17 with MICROMIX_GEMV_SPLIT = k / seg alternating
  for round in 1 2; do
    for t in k seg; do bench split_${t}_r$round "gemv v17" MICROMIX_GEMV_SPLIT=$t -- $M1 $MIX $CAL; done
  done
  for t in k seg; do bench split70_$t "gemv v17" MICROMIX_GEMV_SPLIT=$t -- $B70 $M1 $MIX; done
fi
if has qwen; then  # v14 and v17 at M = 1 on the Qwen2.5 shapes
  for model in qwen2.5-7b qwen2.5-32b; do bench $model "gemv v1[47]" -- --model $model $M1 $MIX; done
fi
if has tailncu; then
  S="--section SpeedOfLight --section MemoryWorkloadAnalysis --section SchedulerStats --section WarpStateStats --section InstructionStats"
  P=smsp__pcsamp_warps_issue_stalled
  M="$P"_long_scoreboard,"$P"_no_instructions,"$P"_wait,"$P"_short_scoreboard,"$P"_barrier,"$P"_selected,"$P"_not_selected,"$P"_math_pipe_throttle,"$P"_lg_throttle,"$P"_branch_resolving,"$P"_dispatch_stall
  for run in v14:0:e128-0:1:0 v14:0:f120-8:0.9375:0.0625 v16:1:f120-8:0.9375:0.0625 v14:0:70-20-10:0.7:0.2 v16:1:70-20-10:0.7:0.2; do
    IFS=: read -r ver merged mix <<< "$run"
    tag=${ver}_${mix%%:*}
    timeout 300 ncu $S --metrics $M --kernel-name-base mangled -k regex:gemv_fragILi1ELb1ELb0ELi2ELi8ELb${merged}E --launch-skip 3 --launch-count 1 \
      $D/bench_gemm --m 1 --only gate_up --kernels -1 --reps 1 --no-default-mixes --mix $mix > "$OUT/s11_tailncu_$tag.txt" 2>&1
    echo "ncu $tag rc=$?"; grep -E "Duration|DRAM Throughput|L2 Hit Rate|Issued Warp Per|Executed Instructions  |pcsamp" "$OUT/s11_tailncu_$tag.txt" | head -20
  done
fi
# At most 8 files come back: everything in one archive.
(cd "$OUT" && tar czf s11_out.tgz --remove-files $(ls | grep -v '^s11_out.tgz$'))
