#!/usr/bin/env bash
# Session-13 runs on the device (binaries in .devgpu/), issue 5, decode at M = 2..16.
#   bash scripts/device_s13.sh [comma list of parts]
#   tests     all GPU tests (CudaMx*, MxMixed*)
#   sanitize  compute-sanitizer memcheck and racecheck on the prepared decode tests (largest grids left out)
#   lean      v17 and v19 rows (MICROMIX_GEMV_FUSED_TOKENS=8: v19 at every M = 2..8) with the generic token
#             prologue (MICROMIX_GEMV_LEAN_PROLOGUE=0) and the per-segment one (=1) alternating, two rounds,
#             8B at M = $S13_MS (default 2 3 4 6 8), then Qwen2.5-7B at M = 2 4 8
#   nt2       M = 9..16: .devgpu/bench_gemm_u2 (two-tile load batch of 2 blocks, 3 CTAs per SM) and the default
#             build (4 blocks, 2 CTAs) alternating, each with the rows kernel on wide layers (default) and
#             without (MICROMIX_GEMV_WIDE_ROWS=0), two rounds, 8B at M = $S13_NT2_MS (default 9 12 16); then
#             70B, Qwen2.5-7B / 32B at M = 16 one round
#   testu2    the two-tile tests on .devgpu/micromix_tests_u2
#   v20       v17, v19 and v20 rows of one process (v20: the two-tile shape by grid at M = 9..16), two rounds,
#             8B at M = 9 12 16, then 70B, Qwen2.5-7B / 32B at M = 9 and 16
#   shapes    v20 with MICROMIX_GEMV_TILE_WARPS / _BATCH = default, 16/2, 16/1, 8/2 alternating, two rounds, 8B at
#             M = 6 8 9 16, then 70B and Qwen2.5-7B at M = 8 and 16 one round
#   warps     v20 with MICROMIX_GEMV_TILE_WARPS / _BATCH = default, 1/4, 2/4, 2/2, 4/4, 4/2 alternating, two rounds,
#             8B at M = 2 8 16, then 70B at M = 4 and 16 one round
#   final     the default dispatch with v17 / v19 / v20 rows and both cuBLAS baselines, 8B at M = 1 2 3 4 6 8 9 16,
#             two rounds, then 70B, Qwen2.5-7B / 32B at M = 2 4 8 16 (JSON too)
TAG=s13
source "$(dirname "$0")/device_env.sh"
parts=${1:-tests,lean}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
MIX="--no-default-mixes --mix 70/20/10:0.7:0.2"
has tests && run_gpu_tests s13 && pack
has sanitize && run_sanitizers s13 'CudaMxMixedGemv.TwoTileShapes:CudaMxMixedGemv.FusedTokensEveryM:CudaMxMixedGemv.TileWarpsPerRowGroup:CudaMxMixedGemv.OddSegmentMixes:CudaMxMixedGemm.EmptyKWritesZeros:CudaMxMixedGemv.WarpsPerRowGroup' \
  'CudaMxMixedGemv.TwoTileShapes:CudaMxMixedGemv.FusedTokensEveryM:CudaMxMixedGemv.TileWarpsPerRowGroup:CudaMxMixedGemv.OddSegmentMixes' && pack
if has lean; then
  for round in 1 2; do
    for lean in 0 1; do
      for m in ${S13_MS:-2 3 4 6 8}; do
        bench lean${lean}_m${m}_r$round "gemv v1[79]" MICROMIX_GEMV_FUSED_TOKENS=8 MICROMIX_GEMV_LEAN_PROLOGUE=$lean -- --m $m --kernels -117,-119 --reps 25 $MIX
      done
    done
    pack
  done
  for lean in 0 1; do
    for m in 2 4 8; do
      bench lean${lean}_qwen7b_m$m "gemv v1[79]" MICROMIX_GEMV_FUSED_TOKENS=8 MICROMIX_GEMV_LEAN_PROLOGUE=$lean -- --model qwen2.5-7b --m $m --kernels -117,-119 --reps 25 $MIX
    done
  done
  pack
fi
if has nt2; then
  for round in 1 2; do
    for b in u4 u2; do
      exe=$D/bench_gemm; [ $b = u2 ] && exe=$D/bench_gemm_u2
      for m in ${S13_NT2_MS:-9 12 16}; do
        for wr in 1 0; do
          EXE=$exe bench nt2_${b}_wr${wr}_m${m}_r$round "gemv v1[79]" MICROMIX_GEMV_WIDE_ROWS=$wr -- --m $m --kernels -117 --reps 25 $MIX
        done
      done
    done
    pack
  done
  for model in llama3.1-70b qwen2.5-7b qwen2.5-32b; do
    for b in u4 u2; do
      exe=$D/bench_gemm; [ $b = u2 ] && exe=$D/bench_gemm_u2
      for wr in 1 0; do
        EXE=$exe bench nt2_${b}_wr${wr}_${model}_m16 "gemv v1[79]" MICROMIX_GEMV_WIDE_ROWS=$wr -- --model $model --m 16 --kernels -117 --reps 25 $MIX
      done
    done
  done
  pack
fi
if has testu2; then
  TESTS=$D/micromix_tests_u2 GPU_FILTER='CudaMxMixedGemv.TileWarpsPerRowGroup:CudaMxMixedGemv.OddSegmentMixes:CudaMxMixedGemv.RowsKernelFromNineRowsOnWideLayers' run_gpu_tests s13_u2 && pack
fi
if has v20; then
  for round in 1 2; do
    for m in 9 12 16; do bench v20_m${m}_r$round "gemv v(1[79]|20)" -- --m $m --kernels -117,-119,-120 --reps 25 $MIX; done
    pack
  done
  for model in llama3.1-70b qwen2.5-7b qwen2.5-32b; do
    for m in 9 16; do bench v20_${model}_m$m "gemv v(1[79]|20)" -- --model $model --m $m --kernels -117,-119,-120 --reps 25 $MIX; done
  done
  pack
fi
if has shapes; then
  run_shapes() {  # tag, bench args
    local tag=$1; shift
    for sh in def 16/2 16/1 8/2; do
      e=(); [ $sh != def ] && e=(MICROMIX_GEMV_TILE_WARPS=${sh%/*} MICROMIX_GEMV_TILE_BATCH=${sh#*/})
      bench shapes_${tag}_${sh/\//b} "gemv v20" "${e[@]}" -- "$@" --kernels -120 --reps 25 $MIX
    done
  }
  for round in 1 2; do
    for m in ${S13_SHAPE_MS:-6 8 9 16}; do run_shapes m${m}_r$round --m $m; done
    pack
  done
  for model in llama3.1-70b qwen2.5-7b; do
    for m in 8 16; do run_shapes ${model}_m$m --model $model --m $m; done
  done
  pack
fi
if has warps; then
  run_warps() {  # tag, bench args
    local tag=$1; shift
    for sh in def 1/4 2/4 2/2 4/4 4/2; do
      e=(); [ $sh != def ] && e=(MICROMIX_GEMV_TILE_WARPS=${sh%/*} MICROMIX_GEMV_TILE_BATCH=${sh#*/})
      bench warps_${tag}_${sh/\//b} "gemv v20" "${e[@]}" -- "$@" --kernels -120 --reps 25 $MIX
    done
  }
  for round in 1 2; do
    for m in 2 8 16; do run_warps m${m}_r$round --m $m; done
    pack
  done
  for m in 4 16; do run_warps llama3.1-70b_m$m --model llama3.1-70b --m $m; done
  pack
fi
if has final; then  # the default dispatch with v17 / v19 / v20 rows and the baselines, 8B two rounds, then the other models
  for round in 1 2; do
    for m in ${S13_FINAL_MS:-1 2 3 4 6 8 9 16}; do
      bench final_m${m}_r$round "default|gemv v(1[79]|20)|cuBLAS" -- --m $m --kernels -117,-119,-120 --reps 25 $MIX --json "$OUT/s13_final_m${m}_r$round.json"
    done
    pack
  done
  for model in llama3.1-70b qwen2.5-7b qwen2.5-32b; do
    for m in 2 4 8 16; do
      bench final_${model}_m$m "default|gemv v(1[79]|20)" -- --model $model --m $m --kernels -117,-119,-120 --reps 25 $MIX --json "$OUT/s13_final_${model}_m$m.json"
    done
  done
  pack
fi
# At most 8 files come back: everything in one archive.
(cd "$OUT" && tar czf s13_out.tgz --remove-files $(ls | grep -v '^s13_out.tgz$'))
