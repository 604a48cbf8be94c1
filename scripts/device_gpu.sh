#!/usr/bin/env bash
# Runs on the GPU machine (device tool) from the repository root, with binaries built elsewhere
# and carried in .devbuild/ (micromix_tests, bench_gemm, lib/ with the non-system shared libs).
#   bash scripts/device_gpu.sh [all|tests|bench|sass]   (default all); logs go to $OUT
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
what=${1:-all}
D=.devbuild
export LD_LIBRARY_PATH="$PWD/$D/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
# cuBLAS from the Python wheels as a fallback when the toolkit's is missing.
if ! ldconfig -p | grep -q libcublasLt.so.13 && [ ! -e /usr/local/cuda/lib64/libcublasLt.so.13 ]; then
  w=$(python3 -c 'import nvidia.cublas, os; print(os.path.dirname(nvidia.cublas.__file__) + "/lib")' 2>/dev/null)
  [ -n "$w" ] && export LD_LIBRARY_PATH="$w:$LD_LIBRARY_PATH"
fi
nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.max.sm,driver_version --format=csv | tee "$OUT/gpu.txt"
ldd $D/micromix_tests | grep -E "not found|cublas|fmt" | tee -a "$OUT/gpu.txt"

if [[ $what == all || $what == tests ]]; then
  echo "== tests"
  timeout 300 $D/micromix_tests --gtest_filter='CudaMx*:MxMixed*' 2>&1 | tee "$OUT/tests.log" | grep -E "^\[  (FAILED|PASSED|  OK) |Failure|error|expected|Which is|bf16 output" | head -60
  echo "== compute-sanitizer memcheck"
  timeout 240 compute-sanitizer --tool memcheck --error-exitcode 9 $D/micromix_tests \
    --gtest_filter='CudaMxReorderQuantize*:CudaMxMixedGemm.EmptyKWritesZeros:CudaMxMixedGemm.NaNScalesPropagate:CudaMxMixedGemm.EveryVersion*' \
    > "$OUT/memcheck.log" 2>&1; echo "memcheck rc=$?"; grep -E "ERROR SUMMARY|PASSED|FAILED" "$OUT/memcheck.log" | head
  echo "== compute-sanitizer racecheck"
  timeout 240 compute-sanitizer --tool racecheck --error-exitcode 9 $D/micromix_tests \
    --gtest_filter='CudaMxMixedGemm.NaNScalesPropagate:CudaMxReorderQuantize*' > "$OUT/racecheck.log" 2>&1
  echo "racecheck rc=$?"; grep -E "ERROR SUMMARY|RACECHECK SUMMARY|PASSED|FAILED" "$OUT/racecheck.log" | head
fi
if [[ $what == all || $what == sass ]]; then
  echo "== SASS"
  cuobjdump --dump-sass $D/micromix_tests > "$OUT/sass_all.txt" 2>&1
  python3 - "$OUT/sass_all.txt" <<'PY' | tee "$OUT/sass_summary.txt"
import re, sys, collections
cur = None; counts = collections.defaultdict(collections.Counter)
for line in open(sys.argv[1], errors="replace"):
    m = re.search(r"Function : (\S+)", line)
    if m: cur = m.group(1); continue
    m = re.search(r"/\*[0-9a-f]{4,}\*/\s+(@!?U?P\w+\s+)?([A-Z][A-Z0-9_.]+)", line)
    if m and cur: counts[cur][m.group(2).split(".")[0]] += 1
for f, c in counts.items():
    if "mixed" not in f and "gemv" not in f and "quantize" not in f and "gemm" not in f: continue
    keys = ["HMMA", "HGMMA", "QGMMA", "LDSM", "LDS", "STS", "LDG", "STG", "LDL", "STL", "FFMA", "BAR", "SHFL"]
    print(f[:110], " ".join(f"{k}={c.get(k,0)}" for k in keys))
PY
  gzip -c "$OUT/sass_all.txt" > "$OUT/sass_all.txt.gz" && rm "$OUT/sass_all.txt"
fi
if [[ $what == all || $what == ncu ]]; then
  echo "== ncu (one launch each: prefill GEMM v1, decode v2, quantize)"
  sections="--section SpeedOfLight --section Occupancy --section WarpStateStats --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis"
  timeout 120 ncu $sections -k regex:gemm_mma_v1 -c 1 $D/bench_gemm --only o --m 8192 --reps 1 > "$OUT/ncu_gemm.txt" 2>&1; echo "ncu gemm rc=$?"
  timeout 120 ncu $sections -k regex:gemv_kernel -c 1 $D/bench_gemm --only down --m 1 --reps 1 > "$OUT/ncu_gemv.txt" 2>&1; echo "ncu gemv rc=$?"
  timeout 120 ncu $sections -k regex:reorder_quantize -c 1 $D/bench_gemm --only o --m 8192 --reps 1 > "$OUT/ncu_quant.txt" 2>&1; echo "ncu quant rc=$?"
  grep -h -E "==PROF==|Duration|Compute \(SM\) Throughput|Memory Throughput|DRAM Throughput|Achieved Occupancy|Registers Per|Stall|Issue Slots|Warp Cycles Per Issued" "$OUT"/ncu_*.txt | head -60
fi
if [[ $what == all || $what == bench ]]; then
  echo "== bench"
  timeout ${BENCH_TIMEOUT:-300} $D/bench_gemm ${BENCH_ARGS:-} --json "$OUT/bench.json" 2>&1 | tee "$OUT/bench.log"
fi
