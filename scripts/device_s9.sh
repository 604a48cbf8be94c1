#!/usr/bin/env bash
# Session-9 runs on the device (binaries in .devgpu/): the decode path (prepared v14, the FP6
# decoder) against the previous build (.devgpu/bench_gemm_old, copied by hand before rebuilding).
#   bash scripts/device_s9.sh [comma list of parts]
#   tests     all GPU tests (CudaMx*, MxMixed*)
#   sanitize  compute-sanitizer memcheck and racecheck on the prepared decode tests
#   decab     bench_gemm at each M of S9_M (default 1) on Llama-3.1-8B shapes, old and new binary alternating,
#             two rounds; mixes: the defaults, FP6-only E3M2 / E2M3, the calibrated SmolLM2 allocation
#   preab     prefill GEMM v15 / v18 / default at M = 256 and 1024, old and new binary
#   d70       Llama-3.1-70B shapes at M = 1, old and new binary, one round
#   dec       the new binary alone at M = S9_MS (default 1 2 4 8 16), same mixes
#   ncu       ncu (with stall samples) on the M = 1 GEMV kernels, gate_up, 70/20/10 (S9_NCU: name suffixes)
# Logs in $OUT/s9_<parts>.tgz.
source "$(dirname "$0")/device_env.sh"
parts=${1:-tests,decab}
has() { [[ ",$parts," == *",$1,"* ]]; }
mixes=(--mix e3m2-only:0:1 --mix e2m3-only:0:1:e2m3 --mix calib-smollm2@5:0.635:0.352:e2m3)
ls -l --time-style=+%H:%M $D/micromix_tests $D/bench_gemm | awk '{print $6, $7}'
has tests && run_gpu_tests s9
has sanitize && run_sanitizers s9 'CudaMxMixedGemv.OneTokenPrePassLongK:CudaMxMixedGemv.OddSegmentMixes:CudaMxMixedGemv.RowsKernelFromNineRowsOnWideLayers' 'CudaMxMixedGemv.OneTokenPrePassLongK:CudaMxMixedGemv.OddSegmentMixes:CudaMxMixedGemv.RowsKernelFromNineRowsOnWideLayers'
if has decab; then
  for m in ${S9_M:-1}; do
  for round in 1 2; do
    for b in old new; do
      exe=$D/bench_gemm; [ $b = old ] && exe=$D/bench_gemm_old
      timeout 200 $exe --m $m --kernels -1 --reps 25 "${mixes[@]}" --json "$OUT/s9_dec_m${m}_${b}_r$round.json" > "$OUT/s9_dec_m${m}_${b}_r$round.txt" 2>&1
      echo "== $b M=$m round $round rc=$?"
      grep -E "70/20/10|calib" "$OUT/s9_dec_m${m}_${b}_r$round.txt" | grep -E "gemv v1[345]" | awk -F'|' '{print $2, $8, $9, $11, $13}' | head -40
    done
  done
  done
fi
if has preab; then  # prefill GEMMs reading FP6 through fp6x4_to_e4m3 (v15, v18, default) at M = 256 / 1024, old and new alternating
  for m in 256 1024; do
    for b in old new; do
      exe=$D/bench_gemm; [ $b = old ] && exe=$D/bench_gemm_old
      timeout 200 $exe --m $m --kernels 0,15,18 --reps 15 > "$OUT/s9_pre_m${m}_${b}.txt" 2>&1
      echo "== prefill $b M=$m rc=$?"; grep -E "70/20/10" "$OUT/s9_pre_m${m}_${b}.txt" | awk -F'|' '{print $2, $8, $9, $12}'
    done
  done
fi
if has d70; then  # Llama-3.1-70B shapes at M = 1, old and new alternating, one round
  for b in old new; do
    exe=$D/bench_gemm; [ $b = old ] && exe=$D/bench_gemm_old
    timeout 200 $exe --model llama3.1-70b --m 1 --kernels -1 --reps 25 --json "$OUT/s9_d70_${b}.json" > "$OUT/s9_d70_${b}.txt" 2>&1
    echo "== 70B $b rc=$?"; grep -E "70/20/10" "$OUT/s9_d70_${b}.txt" | grep -E "gemv v1[345]" | awk -F'|' '{print $2, $8, $9, $11, $13}'
  done
fi
if has dec; then
  for m in ${S9_MS:-1 2 4 8 16}; do
    timeout 200 $D/bench_gemm --m $m --kernels -1 --reps 25 "${mixes[@]}" --json "$OUT/s9_dec_m$m.json" > "$OUT/s9_dec_m$m.txt" 2>&1
    echo "dec M=$m rc=$?"
  done
fi
if has ncu; then  # the M = 1 GEMV kernels on gate_up 70/20/10, one launch each (S9_NCU: mangled-name suffixes)
  S="--section SpeedOfLight --section MemoryWorkloadAnalysis --section SchedulerStats --section WarpStateStats --section InstructionStats --section LaunchStats --section Occupancy"
  for k in ${S9_NCU:-Li0ELi8E Li2ELi8E}; do
    timeout 300 ncu $S --metrics smsp__pcsamp_warps_issue_stalled_long_scoreboard,smsp__pcsamp_warps_issue_stalled_short_scoreboard,smsp__pcsamp_warps_issue_stalled_wait,smsp__pcsamp_warps_issue_stalled_math_pipe_throttle,smsp__pcsamp_warps_issue_stalled_lg_throttle,smsp__pcsamp_warps_issue_stalled_mio_throttle,smsp__pcsamp_warps_issue_stalled_not_selected,smsp__pcsamp_warps_issue_stalled_selected,smsp__pcsamp_warps_issue_stalled_barrier,smsp__pcsamp_warps_issue_stalled_dispatch_stall,smsp__pcsamp_warps_issue_stalled_no_instructions,smsp__pcsamp_warps_issue_stalled_drain,smsp__pcsamp_warps_issue_stalled_membar,smsp__pcsamp_warps_issue_stalled_sleeping,smsp__pcsamp_warps_issue_stalled_branch_resolving,smsp__pcsamp_warps_issue_stalled_tex_throttle,smsp__pcsamp_warps_issue_stalled_imc_miss \
      --kernel-name-base mangled -k regex:gemv_fragILi1ELb1ELb0E$k --launch-skip 3 --launch-count 1 \
      $D/bench_gemm --m 1 --only gate_up --kernels -1 --reps 1 --no-default-mixes --mix 70/20/10:0.7:0.2 > "$OUT/s9_ncu_$k.txt" 2>&1
    echo "ncu $k rc=$?"
    grep -E "Duration|DRAM Throughput|Issued Warp|Warp Cycles Per Issued|Executed Instructions |Achieved Active Warps|pcsamp" "$OUT/s9_ncu_$k.txt" | head -30
  done
fi
tag=$(echo "$parts" | tr ',' '_')
(cd "$OUT" && tar czf "s9_$tag.tgz" s9_*.txt s9_*.json s9_*.log 2>/dev/null; find . -name 's9_*' ! -name 's9_*.tgz' -delete)
