#!/usr/bin/env bash
# Session-13 runs on the device (binaries in .devgpu/), issue 5, decode at M = 2..16.
#   bash scripts/device_s13.sh [comma list of parts]
#   tests     all GPU tests (CudaMx*, MxMixed*)
#   sanitize  compute-sanitizer memcheck and racecheck on the prepared decode tests (largest grids left out)
#   lean      v17 and v19 rows (MICROMIX_GEMV_FUSED_TOKENS=8: v19 at every M = 2..8) with the generic token
#             prologue (MICROMIX_GEMV_LEAN_PROLOGUE=0) and the per-segment one (=1) alternating, two rounds,
#             8B at M = $S13_MS (default 2 3 4 6 8), then Qwen2.5-7B at M = 2 4 8
#   final     the default dispatch, 8B at M = 1 2 4 8 9 16 (JSON too)
TAG=s13
source "$(dirname "$0")/device_env.sh"
parts=${1:-tests,lean}
has() { [[ ",$parts," == *",$1,"* ]]; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
MIX="--no-default-mixes --mix 70/20/10:0.7:0.2"
# The archive of everything so far, rebuilt after each part (a run cut off by its time limit keeps it).
pack() { (cd "$OUT" && tar czf s13_out.tgz $(ls | grep -v '^s13_out.tgz$')); }
has tests && run_gpu_tests s13 && pack
has sanitize && run_sanitizers s13 'CudaMxMixedGemv.FusedTokensEveryM:CudaMxMixedGemv.TileWarpsPerRowGroup:CudaMxMixedGemv.OddSegmentMixes:CudaMxMixedGemm.EmptyKWritesZeros:CudaMxMixedGemv.WarpsPerRowGroup' \
  'CudaMxMixedGemv.FusedTokensEveryM:CudaMxMixedGemv.TileWarpsPerRowGroup:CudaMxMixedGemv.OddSegmentMixes' && pack
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
if has final; then
  for m in ${S13_FINAL_MS:-1 2 4 8 9 16}; do
    bench final_m$m "gemv v1[79]|cuBLAS" -- --m $m --reps 25 $MIX --json "$OUT/s13_final_m$m.json"
  done
  pack
fi
# At most 8 files come back: everything in one archive.
(cd "$OUT" && tar czf s13_out.tgz --remove-files $(ls | grep -v '^s13_out.tgz$'))
