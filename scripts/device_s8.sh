#!/usr/bin/env bash
# Session-8 runs on the device (binaries in .devgpu/): the quantizer's versions and ncu, and the
# tensor-core ceilings of the exact prefill routes (bench_tc_ceiling).
#   bash scripts/device_s8.sh [comma list of parts]
#   qtests    the quantizer tests (every version bit-identical to the CPU quantizer)
#   tests     all GPU tests (CudaMx*, MxMixed*)
#   qbench    bench_gemm --small at M = S8_MS (default 8192 7920 1024): every quantize version, two rounds
#   fused     bench_fused_quantize (RMSNorm K = 4096, SwiGLU K = 14336, unfused, copy)
#   fusedab   bench_fused_quantize_old (earlier build) and bench_fused_quantize alternating, two rounds
#   ncu       ncu on quantize v9 (qkv, M = 8192, K = 4096): details and per-instruction stall samples
#   ncudq     ncu on v18's dequantizer launches (gate_up, M = 1024)
#   ncupipe   ncu on bench_tc_ceiling's int8-g8 pipeline kernel (qkv shape)
#   ceiling   bench_tc_ceiling: tensor-core ceilings of the BF16, FP8 and INT8 prefill routes (twice)
# Logs in $OUT/s8_<parts>.tgz.
source "$(dirname "$0")/device_env.sh"
parts=${1:-qtests,qbench}
has() { [[ ",$parts," == *",$1,"* ]]; }
ls -l --time-style=+%H:%M $D/micromix_tests $D/bench_gemm | awk '{print $6, $7}'
if has qtests; then
  timeout 300 $D/micromix_tests --gtest_filter='CudaMxReorderQuantize*:CudaMxFused*' > "$OUT/s8_qtests.log" 2>&1
  echo "qtests rc=$?"; grep -E "^\[  (FAILED|PASSED) |Failure" "$OUT/s8_qtests.log" | head -20
fi
has tests && run_gpu_tests s8
if has qbench; then
  for round in 1 2; do
    for m in ${S8_MS:-8192 7920 1024}; do
      timeout 150 $D/bench_gemm --small --m $m --json "$OUT/s8_q${m}_r$round.json" 2>&1 | grep -E "quantize|device" > "$OUT/s8_q${m}_r$round.txt"
      echo "qbench M=$m round $round rc=$?"
    done
  done
fi
if has fused; then
  timeout 200 $D/bench_fused_quantize > "$OUT/s8_fused.txt" 2>&1; echo "fused rc=$?"
fi
if has fusedab; then  # bench_fused_quantize_old (previous build, copied by hand) against the new one, alternating
  for round in 1 2; do
    for b in old new; do
      exe=$D/bench_fused_quantize; [ $b = old ] && exe=$D/bench_fused_quantize_old
      timeout 200 $exe --benchmark_min_time=0.3 > "$OUT/s8_fusedab_${b}_r$round.txt" 2>&1
      echo "== $b round $round rc=$?"; grep -E "^BM_" "$OUT/s8_fusedab_${b}_r$round.txt" | awk '{print $1, $2, $3, $NF}'
    done
  done
fi
if has ceiling; then
  for r in 1 2; do timeout 120 $D/bench_tc_ceiling > "$OUT/s8_ceiling_r$r.txt" 2>&1; echo "ceiling round $r rc=$?"; cat "$OUT/s8_ceiling_r$r.txt"; done
fi
if has ncupipe; then  # the int8-g8 pipeline (bench_tc_ceiling), qkv shape: where its time goes
  S="--section SpeedOfLight --section MemoryWorkloadAnalysis --section WarpStateStats --section Occupancy --section SchedulerStats"
  timeout 300 ncu $S -k regex:int8_g8_pipe -c 1 $D/bench_tc_ceiling --blocks 8 > "$OUT/s8_ncu_pipe.txt" 2>&1; echo "ncu pipe rc=$?"
  grep -E "Duration|DRAM Throughput|L2 Cache Throughput|L1/TEX Cache|Compute \(SM\)|Memory Throughput|Mem Busy|Max Bandwidth|L2 Hit|Issue Slots|No Eligible|Warp Cycles Per Issued|Achieved Occupancy" "$OUT/s8_ncu_pipe.txt" | head -30
fi
if has ncudq; then  # v18's dequantizer launches (weights in 64 MiB chunks, activations) on gate_up M = 1024
  timeout 300 ncu --section SpeedOfLight --section LaunchStats -k regex:dequant -c 24 $D/bench_gemm --only gate_up --m 1024 --kernels 18 --reps 1 > "$OUT/s8_ncu_dq.txt" 2>&1
  echo "ncu dq rc=$?"
  grep -E "dequant|Duration|DRAM Throughput|Grid Size" "$OUT/s8_ncu_dq.txt" | sed -E 's/\(unnamed.*//' | paste - - - - | head -30
fi
if has ncu; then  # v9 (R = 4, K = 4096): one launch, every section plus per-instruction stall samples
  S="--section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats --section MemoryWorkloadAnalysis --section MemoryWorkloadAnalysis_Tables --section SchedulerStats --section InstructionStats --section SourceCounters --section ComputeWorkloadAnalysis"
  timeout 300 ncu $S --kernel-name-base mangled -k regex:${S8_NCU_K:-reorder_quantize_v3ILi4ELb1ELi5ELb1ELi1ELb1ELi0ELb0E} --launch-skip 2 --launch-count 1 \
    -o "$OUT/s8_q9" $D/bench_gemm --small --m 8192 --only qkv --reps 1 > "$OUT/s8_ncu_run.txt" 2>&1
  echo "ncu rc=$?"
  ncu -i "$OUT/s8_q9.ncu-rep" --page details > "$OUT/s8_ncu.txt" 2>&1
  ncu -i "$OUT/s8_q9.ncu-rep" --page source --csv --print-source sass > "$OUT/s8_ncu_sass.csv" 2>&1
  echo "details $(wc -l < "$OUT/s8_ncu.txt") lines, sass csv $(wc -l < "$OUT/s8_ncu_sass.csv") lines"
  grep -E "Duration|DRAM Throughput|Achieved Occupancy|Registers Per|Issue Slots Busy|No Eligible|Warp Cycles Per Issued|Block Limit|Executed Instructions |Pipe|Stall" "$OUT/s8_ncu.txt" | head -60
  rm -f "$OUT/s8_q9.ncu-rep"
fi
tag=$(echo "$parts" | tr ',' '_')
(cd "$OUT" && tar czf "s8_$tag.tgz" s8_*.txt s8_*.json s8_*.log s8_*.csv 2>/dev/null; find . -name 's8_*' ! -name 's8_*.tgz' -delete)
