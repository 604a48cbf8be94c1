#!/usr/bin/env bash
# Session-16 runs on the device (binaries in .devgpu/), issue 5: the final commit verified and measured on the
# issue's whole grid.
#   bash scripts/device_s16.sh [comma list of parts]
#   tests     all GPU tests
#   grid      bench_gemm on the issue's grid: Llama-3.1-8B shapes, M = 1 16 64 256 1024 4096 8192, all-MXFP4,
#             all-MXFP8, 70/20/10 and the calibrated allocation; the default dispatch on row-major and on
#             prepared weights (decode v22 at M <= 16), cuBLAS BF16 and cuBLASLt FP8 in the same process,
#             the reorder + quantize versions against the copy at M >= 1024
#   sanitize  compute-sanitizer memcheck on every GPU test but the three longest, racecheck on the kernels
#             with shared memory (quantizers, decode chain, tile GEMVs), largest grids left out
#   linear    bench_decode_linear, Llama-3.1-8B, M = 1 2 4 8 16 (the decode chains)
#   (r2m and nt8 ran on experiment builds: MICROMIX_QUANTIZE_R2 then took 1 / 4 / 8 / 16 as a maximum M, and
#   MICROMIX_GEMV_ROWS_NT existed; on the final build they stop at the refused knob values.)
#   r2m       2 rows per quantizer CTA up to M = 16 (MICROMIX_QUANTIZE_R2 1 = M <= 2, the default, / 16), and 16 with
#             the GEMV always started early (MICROMIX_GEMV_ACTS_CHAIN=all); the chain tests at 16 first
#   r2rule    the rule (dact_rows) against MICROMIX_QUANTIZE_R2=0 (= the previous default at M >= 3), alternating,
#             two rounds, 8B / 70B / Qwen2.5-7B / 32B; the chain tests first; raw output in one s16_r2rule.tgz
#   r2k       the same, Llama-3.1-8B and Qwen2.5-7B at M = 4 and 8 only, four alternating rounds (s16_r2k.tgz)
#   nt8       the rows kernel (M = 33..64 per launch) with 64 tokens per CTA (MICROMIX_GEMV_ROWS_NT 8: 1 CTA per
#             SM, 2-block batches; 8u1: 2 CTAs per SM, 1-block batches) against 2 x 32 (4): tests, then bench_gemm
#             8B M = 40 64 128 and 70B M = 64, alternating, two rounds (s16_nt8.tgz)
#   s512      2-row quantizer CTAs over all of K (MICROMIX_QUANTIZE_R2=1 MICROMIX_QUANTIZE_SPLIT=512: the same CTA count
#             as 4 rows x 256 units) against the default, 8B M = 4 8 12 16 and 70B M = 8 12 16, three alternating
#             rounds; then Qwen2.5-7B M = 1 4 8 16 twice (s16_s512.tgz)
#   final     the final commit: all GPU tests, memcheck / racecheck on the chain tests, bench_decode_linear on
#             8B (M = 1 2 3 4 6 8 12 16, twice) and 70B / Qwen2.5-7B / 32B (M = 1 4 8 16); one s16_final.tgz
TAG=s16
source "$(dirname "$0")/device_env.sh"
parts=${1:-tests,grid}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
has tests && run_gpu_tests s16 && pack
if has grid; then
  timeout 420 $D/bench_gemm --kernels 0,-122 --reps 10 --mix calib-smollm2@5:0.635:0.352:e2m3 \
    --json "$OUT/s16_grid_8b.json" > "$OUT/s16_grid_8b.txt" 2>&1
  echo "== grid rc=$?"; grep -E '^device|prepared weights \(default|gemv v22' "$OUT/s16_grid_8b.txt" | grep -E 'device|70/20/10' | head -40
  pack
fi
if has sanitize; then
  SAN_TIMEOUT=${SAN_TIMEOUT:-280} run_sanitizers s16 \
    'CudaMx*:-CudaMxMixedGemv.FusedTokensEveryM:CudaMxMixedGemv.OddSegmentMixes:CudaMxMixedGemv.WarpsPerRowGroup' \
    'CudaMxDecodeChain.*:CudaMxFused.*:CudaMxReorderQuantize.*:CudaMxMixedGemv.TwoTileShapes:CudaMxMixedGemv.TileWarpsPerRowGroup'
  pack
fi
has linear && linear 8b --m 1,2,4,8,16 --reps 25 && pack
if has r2m; then
  MICROMIX_QUANTIZE_R2=16 GPU_FILTER='CudaMxDecodeChain.*' run_gpu_tests s16_r2m_chain
  for round in 1 2; do
    for r2 in 1 16 16all; do
      [ $r2 = 16all ] && export MICROMIX_GEMV_ACTS_CHAIN=all
      MICROMIX_QUANTIZE_R2=${r2%all} linear r2m_8b_${r2}_r$round --m 3,4,8,12,16 --reps 25 --chains-only
      unset MICROMIX_GEMV_ACTS_CHAIN
    done
  done
  for model in llama3.1-70b qwen2.5-7b; do
    for r2 in 1 16 16all; do
      [ $r2 = 16all ] && export MICROMIX_GEMV_ACTS_CHAIN=all
      MICROMIX_QUANTIZE_R2=${r2%all} linear r2m_${model}_$r2 --model $model --m 4,8,16 --reps 25 --chains-only
      unset MICROMIX_GEMV_ACTS_CHAIN
    done
  done
  pack
fi
if has r2rule; then
  GPU_FILTER='CudaMxDecodeChain.*' run_gpu_tests s16_r2rule_chain
  W=/tmp/s16w; mkdir -p $W
  lin() {  # NAME ARGS...
    local name=$1; shift
    timeout 200 $D/bench_decode_linear "$@" --reps 25 --chains-only > "$W/$name.txt" 2>&1
    echo "== $name rc=$?"; grep -E '^\| [a-z_]+ \| [0-9]' "$W/$name.txt" | awk -F'|' '{print $2, $3, $7, $(NF-4)}' | paste - - - - - -
  }
  for round in 1 2; do
    for r2 in 0 rule; do
      [ $r2 = rule ] && unset MICROMIX_QUANTIZE_R2 || export MICROMIX_QUANTIZE_R2=0
      lin 8b_${r2}_r$round --m 3,4,6,8,12,16
      lin 70b_${r2}_r$round --model llama3.1-70b --m 4,6,8,16
      lin q7_${r2}_r$round --model qwen2.5-7b --m 4,8,16
      lin q32_${r2}_r$round --model qwen2.5-32b --m 4,8,16
      unset MICROMIX_QUANTIZE_R2
    done
  done
  cp "$OUT"/s16_r2rule_chain_tests.log $W/ 2>/dev/null
  (cd $W && tar czf "$OUT/s16_r2rule.tgz" .)
fi
if has r2k; then
  W=/tmp/s16k; mkdir -p $W
  for round in 1 2 3 4; do
    for r2 in 0 rule; do
      [ $r2 = rule ] && unset MICROMIX_QUANTIZE_R2 || export MICROMIX_QUANTIZE_R2=0
      for model in llama3.1-8b qwen2.5-7b; do
        timeout 100 $D/bench_decode_linear --model $model --m 4,8 --reps 25 --chains-only > "$W/${model}_${r2}_r$round.txt" 2>&1
        echo "== $model $r2 r$round rc=$?"
        grep -E '^\| [a-z_]+ \| [0-9]' "$W/${model}_${r2}_r$round.txt" | awk -F'|' '{printf "%s%s v21=%s v22=%s |", $2, $3, $(NF-5), $(NF-4)} END {print ""}'
      done
      unset MICROMIX_QUANTIZE_R2
    done
  done
  (cd $W && tar czf "$OUT/s16_r2k.tgz" .)
fi
if has final; then
  W=/tmp/s16f; mkdir -p $W
  OUT_SAVE=$OUT; OUT=$W
  run_gpu_tests final
  SAN_TIMEOUT=200 run_sanitizers final 'CudaMxDecodeChain.*' 'CudaMxDecodeChain.*'
  for run in 8b 8b_r2; do
    timeout 200 $D/bench_decode_linear --m 1,2,3,4,6,8,12,16 --reps 25 --json $W/linear_$run.json > $W/linear_$run.txt 2>&1
    echo "== $run rc=$?"; grep -E '^\| [a-z_]+ \| [0-9]' $W/linear_$run.txt | awk -F'|' '{printf "%s%s %s %s %s|", $2, $3, $(NF-6), $(NF-4), $(NF-1)} END {print ""}'
  done
  for model in llama3.1-70b qwen2.5-7b qwen2.5-32b; do
    timeout 200 $D/bench_decode_linear --model $model --m 1,4,8,16 --reps 25 --json $W/linear_$model.json > $W/linear_$model.txt 2>&1
    echo "== $model rc=$?"; grep -E '^\| [a-z_]+ \| [0-9]' $W/linear_$model.txt | awk -F'|' '{printf "%s%s %s %s %s|", $2, $3, $(NF-6), $(NF-4), $(NF-1)} END {print ""}'
  done
  OUT=$OUT_SAVE
  (cd $W && tar czf "$OUT/s16_final.tgz" .)
fi
if has nt8; then
  W=/tmp/s16n; mkdir -p $W
  for nt in 8 8u1; do
    MICROMIX_GEMV_ROWS_NT=$nt timeout 200 $D/micromix_tests --gtest_filter='CudaMxMixedGemv.OddSegmentMixes:CudaMxMixedGemv.PreparedVersionsExtremeAndNaNScales' > $W/tests_$nt.log 2>&1
    echo "tests NT=$nt rc=$?"; grep -E "^\[  (FAILED|PASSED) |Failure" $W/tests_$nt.log | head -5
  done
  for round in 1 2; do
    for nt in 4 8 8u1; do
      for m in 40 64 128; do
        MICROMIX_GEMV_ROWS_NT=$nt timeout 100 $D/bench_gemm --m $m --kernels 0 --reps 20 --no-default-mixes --mix 70/20/10:0.7:0.2 > $W/b8_${nt}_m${m}_r$round.txt 2>&1
        echo "== 8b NT=$nt M=$m r$round: $(grep -E 'gemv v13|prepared weights \(default|^\| [a-z_]+ \| [0-9]+ .*70/20/10 default' $W/b8_${nt}_m${m}_r$round.txt | awk -F'|' '{printf "%s %s %s=%s (bf16 %s) ;", $2, $3, substr($8,1,22), $9, $6}')"
      done
      MICROMIX_GEMV_ROWS_NT=$nt timeout 100 $D/bench_gemm --model llama3.1-70b --m 64 --kernels 0 --reps 10 --no-default-mixes --mix 70/20/10:0.7:0.2 > $W/b70_${nt}_r$round.txt 2>&1
      echo "== 70b NT=$nt M=64 r$round: $(grep -E 'gemv v13' $W/b70_${nt}_r$round.txt | awk -F'|' '{printf "%s %s=%s (bf16 %s) ;", $2, $3, $9, $6}')"
    done
  done
  (cd $W && tar czf "$OUT/s16_nt8.tgz" .)
fi
if has s512; then
  W=/tmp/s16s; mkdir -p $W
  for round in 1 2 3; do
    for v in default s512; do
      if [ $v = s512 ]; then export MICROMIX_QUANTIZE_R2=1 MICROMIX_QUANTIZE_SPLIT=512; fi
      for model in llama3.1-8b llama3.1-70b; do
        ms=4,8,12,16; [ $model = llama3.1-70b ] && ms=8,12,16
        timeout 100 $D/bench_decode_linear --model $model --m $ms --reps 25 --chains-only > "$W/${model}_${v}_r$round.txt" 2>&1
        echo "== $model $v r$round: $(grep -E '^\| [a-z_]+ \| [0-9]' "$W/${model}_${v}_r$round.txt" | awk -F'|' '{printf "%s%s q=%s v22=%s |", $2, $3, $7, $(NF-4)}')"
      done
      unset MICROMIX_QUANTIZE_R2 MICROMIX_QUANTIZE_SPLIT
    done
  done
  for round in 1 2; do
    timeout 100 $D/bench_decode_linear --model qwen2.5-7b --m 1,4,8,16 --reps 25 --json $W/q7_r$round.json > $W/q7_r$round.txt 2>&1
    echo "== q7 r$round: $(grep -E '^\| [a-z_]+ \| [0-9]' $W/q7_r$round.txt | awk -F'|' '{printf "%s%s %s %s %s|", $2, $3, $(NF-6), $(NF-4), $(NF-1)}')"
  done
  (cd $W && tar czf "$OUT/s16_s512.tgz" .)
fi
