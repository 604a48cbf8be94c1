#!/usr/bin/env bash
# Runs on the GPU machine (device tool) from the repository root, with binaries built elsewhere
# and carried in .devbuild/ (micromix_tests, bench_gemm, lib/ with the non-system shared libs).
#   bash scripts/device_gpu.sh [all | comma list of tests,sanitize,sass,ncu,bench]   (default all);
#   logs go to $OUT
# DEVBUILD names another binary folder (default .devbuild); BENCH_ARGS go to bench_gemm.
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
what=${1:-all}
has() { [[ $what == all || ",$what," == *",$1,"* ]]; }
D=${DEVBUILD:-.devbuild}
[ -f "$D/lib/libopenblas.so.0" ] || { [ -f "$D/lib/libopenblas.so.0.xz" ] && xz -dc "$D/lib/libopenblas.so.0.xz" > "$D/lib/libopenblas.so.0"; }
export LD_LIBRARY_PATH="$PWD/$D/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
# cuBLAS from the Python wheels as a fallback when the toolkit's is missing.
if ! ldconfig -p | grep -q libcublasLt.so.13 && [ ! -e /usr/local/cuda/lib64/libcublasLt.so.13 ]; then
  w=$(python3 -c 'import nvidia.cublas, os; print(os.path.dirname(nvidia.cublas.__file__) + "/lib")' 2>/dev/null)
  [ -n "$w" ] && export LD_LIBRARY_PATH="$w:$LD_LIBRARY_PATH"
fi
nvidia-smi --query-gpu=name,memory.total,clocks.sm,clocks.max.sm,driver_version --format=csv | tee "$OUT/gpu.txt"
ldd $D/micromix_tests | grep -E "not found|cublas|fmt" | tee -a "$OUT/gpu.txt"

if has tests; then
  echo "== tests"
  timeout 300 $D/micromix_tests --gtest_filter='CudaMx*:MxMixed*' 2>&1 | tee "$OUT/tests.log" | grep -E "^\[  (FAILED|PASSED|  OK) |Failure|error|expected|Which is|bf16 output" | head -60
fi
if has sanitize; then
  echo "== compute-sanitizer memcheck"
  timeout 240 compute-sanitizer --tool memcheck --error-exitcode 9 $D/micromix_tests \
    --gtest_filter='CudaMxReorderQuantize*:CudaMxMixedGemm.EmptyKWritesZeros:CudaMxMixedGemm.NaNScalesPropagate:CudaMxMixedGemm.EveryVersion*:CudaMxMixedGemmFp8.NaNScales*:CudaMxMixedGemmFp8.ExtremeScales*:CudaMxMixedGemv.OddSegmentMixes:CudaMxMixedGemv.PreparedVersions*' \
    > "$OUT/memcheck.log" 2>&1; echo "memcheck rc=$?"; grep -E "ERROR SUMMARY|PASSED|FAILED" "$OUT/memcheck.log" | head
  echo "== compute-sanitizer racecheck"
  timeout 240 compute-sanitizer --tool racecheck --error-exitcode 9 $D/micromix_tests \
    --gtest_filter='CudaMxMixedGemm.NaNScalesPropagate:CudaMxMixedGemmFp8.NaNScales*:CudaMxReorderQuantize.BitIdentical*:CudaMxMixedGemv.OddSegmentMixes' > "$OUT/racecheck.log" 2>&1
  echo "racecheck rc=$?"; grep -E "ERROR SUMMARY|RACECHECK SUMMARY|PASSED|FAILED" "$OUT/racecheck.log" | head
fi
if has sass; then
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
    keys = ["HMMA", "HGMMA", "QGMMA", "LDSM", "LDS", "STS", "LDG", "LDGSTS", "STG", "LDL", "STL", "FFMA", "HMUL2", "F2FP", "BAR", "SHFL"]
    print(f[:110], " ".join(f"{k}={c.get(k,0)}" for k in keys))
PY
  # The whole dump only on request (SASS_KEEP=1): $OUT returns at most 8 files.
  if [ "${SASS_KEEP:-0}" = 1 ]; then gzip -c "$OUT/sass_all.txt" > "$OUT/sass_all.txt.gz"; fi
  rm "$OUT/sass_all.txt"
fi
if has ncu; then
  echo "== ncu (one launch each: decode v8 down M=1 (mxfp4) and M=16, quantize v4 M=8192)"
  sections="--section SpeedOfLight --section Occupancy --section WarpStateStats --section MemoryWorkloadAnalysis --section ComputeWorkloadAnalysis"
  timeout 120 ncu $sections --kernel-name-base mangled -k regex:gemv_tcILi1ELb1ELi8ELi3ELb1E -c 1 $D/bench_gemm --small --only down --m 1 --reps 1 > "$OUT/ncu_gemv.txt" 2>&1; echo "ncu gemv rc=$?"
  timeout 120 ncu $sections --kernel-name-base mangled -k regex:gemv_tcILi2ELb0ELi8ELi2ELb1E -c 1 $D/bench_gemm --small --only down --m 16 --reps 1 > "$OUT/ncu_gemv16.txt" 2>&1; echo "ncu gemv16 rc=$?"
  timeout 120 ncu $sections --kernel-name-base mangled -k regex:reorder_quantize_v3ILi4ELb1E -c 1 $D/bench_gemm --small --only o --m 8192 --reps 1 > "$OUT/ncu_quant.txt" 2>&1; echo "ncu quant rc=$?"
  grep -h -E "==PROF==|Duration|Compute \(SM\) Throughput|Memory Throughput|DRAM Throughput|Achieved Occupancy|Registers Per|Stall|Issue Slots|Warp Cycles Per Issued" "$OUT"/ncu_*.txt | head -60
fi
if has bench; then
  echo "== bench"
  timeout ${BENCH_TIMEOUT:-300} $D/bench_gemm ${BENCH_ARGS:-} --json "$OUT/bench.json" 2>&1 | tee "$OUT/bench.log"
fi
