#!/usr/bin/env bash
# Session-15 runs on the device (binaries in .devgpu/), issue 5: the quantizer writes the decode GEMV's
# activation layout (MxDecodeActs; decode v22, quantizer v13 kernels).
#   bash scripts/device_s15.sh [comma list of parts]
#   chain     the decode-chain tests (CudaMxDecodeChain.*: v22 == v21 bit for bit, acts everywhere vs the
#             double product, every producer, split / unsplit / v1 quantizers)
#   tests     all GPU tests
#   sanitize  compute-sanitizer memcheck and racecheck on the chain tests
#   qncu      ncu on the RMSNorm quantizer (K = 4096) with and without the decode-ready layout, M = 8 and 1
#   forms     the tile forms A/B (MICROMIX_GEMV_TILE_SC, a knob of that build, removed after it: v22 keeps
#             the {scale, start} form; on later builds the part runs one form twice), chains only
#   chainab   MICROMIX_GEMV_ACTS_CHAIN all / 0 / the rule, chains only, 70B, 8B, Qwen2.5-32B
#   gemm      bench_gemm v21 / v22 rows alone, 8B at M = 1 4 16
#   split     large-K down: MICROMIX_QUANTIZE_SPLIT 256 / 512 x GEMV early by the rule / always (chains only)
#   early     MICROMIX_QUANTIZE_EARLY 0 / 1 (the small-M quantizer's staging loads 4 ahead, the permutation early)
#   early3    the same, three rounds, 8B and 70B at M = 1 4 16
#   r2        M = 1, 2: 2 rows per quantizer CTA up to K = 8192 (MICROMIX_QUANTIZE_R2 0 / 1), three rounds
#   linear    bench_decode_linear (bf16, fp8, v21, v22 chains): Llama-3.1-8B M = 1 2 4 5 8 12 16, then a
#             second round of the micromix chains only; 70B, Qwen2.5-7B / 32B at M = 1 4 16
TAG=s15
source "$(dirname "$0")/device_env.sh"
parts=${1:-chain,linear}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
has chain && GPU_FILTER='CudaMxDecodeChain.*' run_gpu_tests s15_chain && pack
has tests && run_gpu_tests s15 && pack
has sanitize && SAN_TIMEOUT=${SAN_TIMEOUT:-240} run_sanitizers s15 'CudaMxDecodeChain.*:CudaMxMixedGemv.TwoTileShapes' \
  'CudaMxDecodeChain.*:CudaMxMixedGemv.TwoTileShapes' && pack
if has linear; then
  linear 8b --m ${S15_MS:-1,2,4,5,8,12,16} --reps 25; pack
  [ -n "${S15_ROUND2:-1}" ] && linear 8b_chains --m ${S15_MS:-1,2,4,5,8,12,16} --reps 25 --chains-only && pack
  if [ -z "${S15_8B_ONLY:-}" ]; then
    for model in llama3.1-70b qwen2.5-7b qwen2.5-32b; do linear $model --model $model --m 1,4,16 --reps 25; done
    pack
  fi
fi
if has qncu; then  # the quantizer with and without the decode-ready layout (8B o, M = 8 and 1, RMSNorm, K = 4096)
  S="--section SpeedOfLight --section LaunchStats --section SchedulerStats --section WarpStateStats --section InstructionStats"
  P=smsp__pcsamp_warps_issue_stalled
  MET="$P"_long_scoreboard,"$P"_no_instructions,"$P"_wait,"$P"_short_scoreboard,"$P"_barrier,"$P"_selected,"$P"_not_selected,"$P"_membar,"$P"_lg_throttle,"$P"_branch_resolving,"$P"_drain,"$P"_sleeping
  for m in 8 1; do
    for dact in 0 1; do
      timeout 200 ncu $S --metrics $MET --kernel-name-base mangled -k regex:"reorder_quantize_v3ILi4ELb1ELi[24]ELb1ELi1ELb1ELi1ELb1ELb${dact}E" \
        --launch-skip 5 --launch-count 1 $D/bench_decode_linear --only o --m $m --reps 2 --chains-only > "$OUT/s15_qncu_m${m}_dact$dact.txt" 2>&1
      echo "ncu m=$m dact=$dact rc=$?"; grep -E "Duration|Executed Instructions  |Issued Warp Per|No Eligible|pcsamp|Registers Per|Grid Size" "$OUT/s15_qncu_m${m}_dact$dact.txt" | head -24
    done
  done
  pack
fi
if has forms; then  # the two tile forms (MICROMIX_GEMV_TILE_SC 0 / 1) alternating, two rounds: quantizer + v21 / v22 chains
  for round in 1 2; do
    for form in 0 1; do
      MICROMIX_GEMV_TILE_SC=$form linear forms_8b_sc${form}_r$round --m 2,4,8,16 --reps 25 --chains-only
    done
  done
  for model in llama3.1-70b qwen2.5-7b; do
    for form in 0 1; do MICROMIX_GEMV_TILE_SC=$form linear forms_${model}_sc$form --model $model --m 4,16 --reps 25 --chains-only; done
  done
  pack
fi
if has chainab; then  # the v22 GEMV launched early behind the quantizer or not (MICROMIX_GEMV_ACTS_CHAIN all / 0 / rule)
  for round in 1 2; do
    for ch in all 0 rule; do
      [ $ch = rule ] && unset MICROMIX_GEMV_ACTS_CHAIN || export MICROMIX_GEMV_ACTS_CHAIN=$ch
      linear chain_70b_${ch}_r$round --model llama3.1-70b --m 1,4,16 --reps 25 --chains-only
      linear chain_8b_${ch}_r$round --m 1,4,8,16 --reps 25 --chains-only
    done
    unset MICROMIX_GEMV_ACTS_CHAIN
  done
  for ch in all 0; do MICROMIX_GEMV_ACTS_CHAIN=$ch linear chain_q32_$ch --model qwen2.5-32b --m 1,4,16 --reps 25 --chains-only; done
  pack
fi
if has gemm; then  # bench_gemm's v21 / v22 rows (the GEMV alone, no producer; v22 without acts: its tile form via the pre-pass)
  for m in 1 4 16; do bench gemm_m$m "gemv v2[12]|cuBLAS" -- --m $m --kernels -121,-122 --reps 25 --no-default-mixes --mix 70/20/10:0.7:0.2; done
  pack
fi
if has split; then  # large-K down: the quantizer's split (256 / 512 units) with the GEMV early (all) or by the rule
  for round in 1 2; do
    for sp in 256 512; do
      for ch in rule all; do
        [ $ch = rule ] && unset MICROMIX_GEMV_ACTS_CHAIN || export MICROMIX_GEMV_ACTS_CHAIN=$ch
        MICROMIX_QUANTIZE_SPLIT=$sp linear split_8b_sp${sp}_${ch}_r$round --only down --m 2,4,8,16 --reps 25 --chains-only
        [ $round = 1 ] && MICROMIX_QUANTIZE_SPLIT=$sp linear split_q7_sp${sp}_${ch} --model qwen2.5-7b --only down --m 1,4,16 --reps 25 --chains-only
        [ $round = 1 ] && MICROMIX_QUANTIZE_SPLIT=$sp linear split_70b_sp${sp}_${ch} --model llama3.1-70b --only down --m 1,4,16 --reps 25 --chains-only
      done
    done
  done
  unset MICROMIX_GEMV_ACTS_CHAIN
  pack
fi
if has r2; then  # M = 1, 2: 2 rows per quantizer CTA up to K = 8192 (MICROMIX_QUANTIZE_R2 0 / 1), three rounds, chains only
  for round in 1 2 3; do
    for e in 0 1; do
      MICROMIX_QUANTIZE_R2=$e linear r2_8b_e${e}_r$round --m 1,2 --reps 30 --chains-only
      MICROMIX_QUANTIZE_R2=$e linear r2_70b_e${e}_r$round --model llama3.1-70b --m 1,2 --reps 30 --chains-only
    done
  done
  pack
fi
if has early3; then  # MICROMIX_QUANTIZE_EARLY 0 / 1 alternating, three rounds, 8B and 70B at M = 1 4 16 (chains only)
  for round in 1 2 3; do
    for e in 0 1; do
      MICROMIX_QUANTIZE_EARLY=$e linear early3_8b_e${e}_r$round --m 1,4,16 --reps 30 --chains-only
      MICROMIX_QUANTIZE_EARLY=$e linear early3_70b_e${e}_r$round --model llama3.1-70b --m 1,4,16 --reps 30 --chains-only
    done
  done
  pack
fi
if has early; then  # the small-M quantizer with acts, MICROMIX_QUANTIZE_EARLY 0 / 1 alternating, two rounds (chains only)
  for round in 1 2; do
    for e in 0 1; do
      MICROMIX_QUANTIZE_EARLY=$e linear early_8b_e${e}_r$round --m 1,2,8,16 --reps 25 --chains-only
    done
  done
  for model in llama3.1-70b qwen2.5-7b qwen2.5-32b; do
    for e in 0 1; do MICROMIX_QUANTIZE_EARLY=$e linear early_${model}_e$e --model $model --m 1,4,16 --reps 25 --chains-only; done
  done
  pack
fi
# At most 8 files come back: everything in one archive.
(cd "$OUT" && tar czf s15_out.tgz --remove-files $(ls | grep -v '^s15_out.tgz$'))
