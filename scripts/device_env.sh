# Sourced by the scripts/device_*.sh runners on the GPU machine: $OUT (the folder that comes back),
# $D (the carried binary folder, DEVBUILD or .devgpu) and the library path for its shared libraries.
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
D=${DEVBUILD:-.devgpu}
[ -f "$D/lib/libopenblas.so.0" ] || xz -dc "$D/lib/libopenblas.so.0.xz" > "$D/lib/libopenblas.so.0"
export LD_LIBRARY_PATH="$PWD/$D/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"

# The GPU tests (CudaMx*, MxMixed*) into $OUT/<tag>_tests.log, and a summary.
run_gpu_tests() {
  local tag=$1
  timeout 400 $D/micromix_tests --gtest_filter='CudaMx*:MxMixed*' > "$OUT/${tag}_tests.log" 2>&1
  echo "tests rc=$?"; grep -E "^\[  (FAILED|PASSED) |Failure" "$OUT/${tag}_tests.log" | head -20
}

# compute-sanitizer memcheck on gtest filter $2 and racecheck on filter $3, logs $OUT/<tag>_{memcheck,racecheck}.log.
run_sanitizers() {
  local tag=$1 mem=$2 race=$3
  timeout 400 compute-sanitizer --tool memcheck $D/micromix_tests --gtest_filter="$mem" > "$OUT/${tag}_memcheck.log" 2>&1
  echo "memcheck rc=$?"; grep -E "ERROR SUMMARY|PASSED|FAILED" "$OUT/${tag}_memcheck.log" | head -5
  timeout 400 compute-sanitizer --tool racecheck $D/micromix_tests --gtest_filter="$race" > "$OUT/${tag}_racecheck.log" 2>&1
  echo "racecheck rc=$?"; grep -E "RACECHECK SUMMARY|ERROR SUMMARY|PASSED|FAILED" "$OUT/${tag}_racecheck.log" | head -5
}
