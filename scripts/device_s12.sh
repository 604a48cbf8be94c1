#!/usr/bin/env bash
# Session-12 runs on the device (binaries in .devgpu/), issue 5, decode at M = 2..16.
#   bash scripts/device_s12.sh [comma list of parts]
#   tests     all GPU tests (CudaMx*, MxMixed*)
#   sanitize  compute-sanitizer memcheck and racecheck on the prepared decode tests (every M of the decode range)
#   abold     .devgpu/bench_gemm_old (previous build) and the new one alternating, two rounds: v17 rows at
#             M = $S12_MS (default 1 2 4 8 9 16), 8B, 70/20/10
#   tw        the new build with MICROMIX_GEMV_TILE_WARPS=8 and by its rule alternating: 8B, 70B, Qwen2.5-7B / 32B, M = 2 and 16
#   ncu       ncu on v17's kernels (pre-pass and GEMV) at M = 2 and 16, qkv and gate_up, tile warps 8 and by rule
source "$(dirname "$0")/device_env.sh"
parts=${1:-tests,abold}
has() { [[ ",$parts," == *",$1,"* ]]; }
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
# bench NAME PATTERN [VAR=VALUE ...] -- ARGS...: one bench_gemm run ($EXE, default $D/bench_gemm) with
# those environment variables into $OUT/s12_NAME.txt, then its rows whose kernel matches PATTERN (layer,
# mix and kernel, us, x cuBLASLt FP8), four per line.
bench() {
  local name=$1 pattern=$2 envs=()
  shift 2
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  env "${envs[@]}" timeout 200 "${EXE:-$D/bench_gemm}" "$@" > "$OUT/s12_$name.txt" 2>&1
  echo "== $name rc=$?"
  grep -E "$pattern" "$OUT/s12_$name.txt" | awk -F'|' '{print $2, $3, $8, $9, $13}' | sed 's/ prepared weights ([^)]*)//' | paste - - - -
}
MIX="--no-default-mixes --mix 70/20/10:0.7:0.2"
# The archive of everything so far, rebuilt after each part (a run cut off by its time limit keeps it).
pack() { (cd "$OUT" && tar czf s12_out.tgz $(ls | grep -v '^s12_out.tgz$')); }
has tests && run_gpu_tests s12 && pack
has sanitize && run_sanitizers s12 'CudaMxMixedGemv.TileWarpsPerRowGroup:CudaMxMixedGemv.RowsKernelFromNineRowsOnWideLayers:CudaMxMixedGemv.OddSegmentMixes:CudaMxMixedGemv.WarpsPerRowGroup' \
  'CudaMxMixedGemv.TileWarpsPerRowGroup:CudaMxMixedGemv.OddSegmentMixes' && pack
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
