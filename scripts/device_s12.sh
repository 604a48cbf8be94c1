#!/usr/bin/env bash
# Session-12 runs on the device (binaries in .devgpu/), issue 5, decode at M = 2..16.
#   bash scripts/device_s12.sh [comma list of parts]
#   tests     all GPU tests (CudaMx*, MxMixed*)
#   sanitize  compute-sanitizer memcheck and racecheck on the prepared decode tests (every M of the decode range;
#             FusedTokensEveryM's 300-row-group cases make this part take several minutes)
#   abold     .devgpu/bench_gemm_old (previous build) and the new one alternating, two rounds: v17 rows at
#             M = $S12_MS (default 1 2 4 8 9 16), 8B, 70/20/10
#   tw        the new build with MICROMIX_GEMV_TILE_WARPS=8 and by its rule alternating: 8B, 70B, Qwen2.5-7B / 32B, M = 2 and 16
#   v19       v17 and v19 (tokens decoded per CTA at M = 2..8) as rows of one process
#   abv19     the previous build and this one alternating: v17 and v19 rows, 8B, M = $S12_V19_MS
#   abs11     the session-11 build (.devgpu/bench_gemm_s11) and this one alternating, 8B, M = $S12_MS (JSON too)
#   f16       v19 at M = 2: 8 warps per row group or 16 (MICROMIX_GEMV_FUSED16=1, an experiment) alternating
#   ncu       ncu on the default decode kernels (pre-pass and GEMV) one by one, $S12_NCU = M:layer cases
TAG=s12
source "$(dirname "$0")/device_env.sh"
parts=${1:-tests,abold}
has() { [[ ",$parts," == *",$1,"* ]]; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
MIX="--no-default-mixes --mix 70/20/10:0.7:0.2"
# The archive of everything so far, rebuilt after each part (a run cut off by its time limit keeps it).
pack() { (cd "$OUT" && tar czf s12_out.tgz $(ls | grep -v '^s12_out.tgz$')); }
has tests && run_gpu_tests s12 && pack
has sanitize && run_sanitizers s12 'CudaMxMixedGemv.FusedTokensEveryM:CudaMxMixedGemv.TileWarpsPerRowGroup:CudaMxMixedGemv.RowsKernelFromNineRowsOnWideLayers:CudaMxMixedGemv.OddSegmentMixes:CudaMxMixedGemm.EmptyKWritesZeros:CudaMxMixedGemv.WarpsPerRowGroup' \
  'CudaMxMixedGemv.FusedTokensEveryM:CudaMxMixedGemv.TileWarpsPerRowGroup:CudaMxMixedGemv.OddSegmentMixes' && pack
if has abold; then
  for round in 1 2; do
    for b in old new; do
      exe=$D/bench_gemm; k=-117; [ $b = old ] && exe=$D/bench_gemm_old && k=-1  # the old build has no -117
      for m in ${S12_MS:-1 2 4 8 9 16}; do
        EXE=$exe bench abold_${b}_m${m}_r$round "gemv v17" -- --m $m --kernels $k --reps 25 $MIX
      done
    done
    pack
  done
fi
if has tw; then  # the new build: tile warps 8 (as before) and by the rule alternating, two rounds ($S12_TW: model:M cases)
  for round in 1 2; do
    for c in ${S12_TW:-llama3.1-8b:16 llama3.1-70b:16 qwen2.5-7b:16 qwen2.5-32b:16 llama3.1-70b:2 qwen2.5-32b:2}; do
      model=${c%:*} m=${c#*:}
      for tw in 8 rule; do
        e=(); [ $tw != rule ] && e=(MICROMIX_GEMV_TILE_WARPS=$tw)
        bench tw_${model}_m${m}_${tw}_r$round "gemv v17" "${e[@]}" -- --model $model --m $m --kernels -117 --reps 25 $MIX
      done
    done
    pack
  done
fi
if has v19; then  # v17 and v19 rows of one process: 8B at M = $S12_V19_MS two rounds, the other models at M = 2 and 8
  for round in 1 2; do
    for m in ${S12_V19_MS:-2 3 4 6 8}; do bench v19_m${m}_r$round "gemv v1[79]" -- --m $m --kernels -117,-119 --reps 25 $MIX; done
    pack
  done
  for model in llama3.1-70b qwen2.5-7b qwen2.5-32b; do
    for m in 2 8; do bench v19_${model}_m$m "gemv v1[79]" -- --model $model --m $m --kernels -117,-119 --reps 25 $MIX; done
  done
  pack
fi
if has abv19; then  # the previous build (.devgpu/bench_gemm_old) and this one alternating, v17 and v19 rows, 8B, M = $S12_V19_MS
  for round in 1 2; do
    for b in old new; do
      exe=$D/bench_gemm; [ $b = old ] && exe=$D/bench_gemm_old
      for m in ${S12_V19_MS:-2 3 4 8}; do EXE=$exe bench abv19_${b}_m${m}_r$round "gemv v1[79]" -- --m $m --kernels -117,-119 --reps 25 $MIX; done
    done
    pack
  done
fi
if has abs11; then  # the session-11 build (.devgpu/bench_gemm_s11, commit 908daa2: v17) and this one alternating, 8B, M = $S12_MS
  for round in 1 2; do
    for b in s11 new; do
      exe=$D/bench_gemm; k=-117,-119; [ $b = s11 ] && exe=$D/bench_gemm_s11 && k=-1
      for m in ${S12_MS:-1 2 4 8 9 16}; do
        EXE=$exe bench abs11_${b}_m${m}_r$round "gemv v1[79]" -- --m $m --kernels $k --reps 25 $MIX --json "$OUT/s12_abs11_${b}_m${m}_r$round.json"
      done
    done
    pack
  done
fi
if has f16; then  # v19 at M = 2 with 8 warps per row group and with 16 where the grid fits (MICROMIX_GEMV_FUSED16=1) alternating
  for round in 1 2; do
    for model in llama3.1-8b qwen2.5-7b; do
      for v in 8 16; do
        e=(); [ $v = 16 ] && e=(MICROMIX_GEMV_FUSED16=1)
        bench f16_${model}_${v}_r$round "gemv v1[79]" "${e[@]}" -- --model $model --m 2 --kernels -117,-119 --reps 25 $MIX
      done
    done
  done
  pack
fi
if has ncu; then  # v17's kernels (pre-pass and GEMV) one by one: $S12_NCU = M:layer cases, new build, its own rule
  S="--section SpeedOfLight --section MemoryWorkloadAnalysis --section LaunchStats --section Occupancy --section SchedulerStats --section WarpStateStats"
  for c in ${S12_NCU:-1:o 2:o 2:qkv 16:o 16:qkv 2:gate_up}; do
    m=${c%:*} layer=${c#*:}
    tag=m${m}_$layer
    timeout 300 ncu $S -k regex:"gemv_frag|gemv_rows|prepare_act|prepare_tok" --launch-skip 4 --launch-count 2 \
      $D/bench_gemm --m $m --only $layer --kernels -117 --reps 1 $MIX > "$OUT/s12_ncu_$tag.txt" 2>&1
    echo "ncu $tag rc=$?"
    grep -E "^  [a-zA-Z_]+.*\(|Duration|DRAM Throughput|L1/TEX Hit|L2 Hit Rate|Mem Busy|Registers Per|Achieved Occupancy|Issued Warp Per|No Eligible|Waves Per SM" "$OUT/s12_ncu_$tag.txt" | head -30
  done
  pack
fi
# At most 8 files come back: everything in one archive.
(cd "$OUT" && tar czf s12_out.tgz --remove-files $(ls | grep -v '^s12_out.tgz$'))
