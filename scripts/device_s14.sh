#!/usr/bin/env bash
# Session-14 runs on the device (binaries in .devgpu/), issue 5: the decode linear end to end.
#   bash scripts/device_s14.sh [comma list of parts]
#   tests     all GPU tests (CudaMx*, MxMixed*; CudaMxDecodeChain: quantizer -> GEMV on one stream)
#   sanitize  compute-sanitizer memcheck and racecheck on the chain test and the prepared decode tests
#   linear    bench_decode_linear (producer + GEMM chains: bf16, fp8, v20, v21), Llama-3.1-8B M = 1 2 4 8 16
#             two rounds, then 70B, Qwen2.5-7B / 32B at M = 1 4 16 (JSON too)
#   gemm      bench_gemm v20 / v21 rows alone (no producer before them), 8B at M = 1 4 16
#   qsplit    the quantizer alone and the v20 / v21 chains with MICROMIX_QUANTIZE_SPLIT = 0, 128, 256, 512
#             alternating: 8B and Qwen2.5-7B at M = 1 4 16
#   sweep     v20 / v21 chains only with MICROMIX_GEMV_CHAIN_PREPASS = 0, 32, all alternating: 8B at M = 2 8 16,
#             then 70B and Qwen2.5-32B at M = 4 16
TAG=s14
source "$(dirname "$0")/device_env.sh"
parts=${1:-tests,linear}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
MIX="--no-default-mixes --mix 70/20/10:0.7:0.2"
has tests && run_gpu_tests s14 && pack
has sanitize && SAN_TIMEOUT=${SAN_TIMEOUT:-240} run_sanitizers s14 \
  'CudaMxDecodeChain.*:CudaMxFused.SingleFormatSplitsAndLargeK:CudaMxFused.SplitKBitIdentical:CudaMxReorderQuantize.SplitKBitIdentical' \
  'CudaMxDecodeChain.*:CudaMxFused.SplitKBitIdentical:CudaMxReorderQuantize.SplitKBitIdentical' && pack
if has linear; then
  for round in ${S14_ROUNDS:-1 2}; do linear 8b_r$round --m ${S14_MS:-1,2,4,8,16} --reps 25; pack; done
  if [ -z "${S14_8B_ONLY:-}" ]; then
    for model in llama3.1-70b qwen2.5-7b qwen2.5-32b; do linear $model --model $model --m 1,4,16 --reps 25; done
    pack
  fi
fi
if has qsplit; then
  for model in ${S14_QSPLIT_MODELS:-llama3.1-8b qwen2.5-7b}; do
    for sp in ${S14_SPLITS:-0 128 256 512}; do
      MICROMIX_QUANTIZE_SPLIT=$sp linear qsplit_${model}_sp$sp --model $model --m 1,4,16 --reps 20 --chains-only
    done
    pack
  done
fi
if has sweep; then
  for cp in 0 32 all; do
    MICROMIX_GEMV_CHAIN_PREPASS=$cp linear sweep_8b_cp$cp --m 2,8,16 --reps 20 --chains-only
  done
  pack
  for model in llama3.1-70b qwen2.5-32b; do
    for cp in 0 32 all; do
      MICROMIX_GEMV_CHAIN_PREPASS=$cp linear sweep_${model}_cp$cp --model $model --m 4,16 --reps 20 --chains-only
    done
  done
  pack
fi
if has gemm; then
  for m in 1 4 16; do bench gemm_m$m "gemv v2[01]|cuBLAS" -- --m $m --kernels -120,-121 --reps 25 $MIX; done
  pack
fi
# At most 8 files come back: everything in one archive.
(cd "$OUT" && tar czf s14_out.tgz --remove-files $(ls | grep -v '^s14_out.tgz$'))
