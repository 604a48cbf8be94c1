# Sourced by the scripts/device_*.sh runners on the GPU machine: $OUT (the folder that comes back),
# $D (the carried binary folder, DEVBUILD or .devgpu) and the library path for its shared libraries.
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
D=${DEVBUILD:-.devgpu}
[ -f "$D/lib/libopenblas.so.0" ] || xz -dc "$D/lib/libopenblas.so.0.xz" > "$D/lib/libopenblas.so.0"
export LD_LIBRARY_PATH="$PWD/$D/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"

# has PART: PART is in the runner's comma list $parts. pack: everything in $OUT so far into
# ${TAG}_out.tgz, rebuilt after each part (a run cut off by its time limit still brings it back).
has() { [[ ",${parts:-}," == *",$1,"* ]]; }
pack() { (cd "$OUT" && tar czf "${TAG}_out.tgz" $(ls | grep -v "^${TAG}_out.tgz$")); }

# TESTS (default $D/micromix_tests) and GPU_FILTER (default CudaMx*:MxMixed*) pick the binary and tests.
# The GPU tests (CudaMx*, MxMixed*) into $OUT/<tag>_tests.log, and a summary.
run_gpu_tests() {
  local tag=$1
  timeout 400 ${TESTS:-$D/micromix_tests} --gtest_filter="${GPU_FILTER:-CudaMx*:MxMixed*}" > "$OUT/${tag}_tests.log" 2>&1
  echo "tests rc=$?"; grep -E "^\[  (FAILED|PASSED) |Failure" "$OUT/${tag}_tests.log" | head -20
}

# compute-sanitizer memcheck on gtest filter $2 (MICROMIX_TEST_SANITIZER set: tests leave out their largest grids) and racecheck on filter $3, logs $OUT/<tag>_{memcheck,racecheck}.log.
run_sanitizers() {
  local tag=$1 mem=$2 race=$3
  MICROMIX_TEST_SANITIZER=1 timeout ${SAN_TIMEOUT:-400} compute-sanitizer --tool memcheck ${TESTS:-$D/micromix_tests} --gtest_filter="$mem" > "$OUT/${tag}_memcheck.log" 2>&1
  echo "memcheck rc=$?"; grep -E "ERROR SUMMARY|PASSED|FAILED" "$OUT/${tag}_memcheck.log" | head -5
  MICROMIX_TEST_SANITIZER=1 timeout ${SAN_TIMEOUT:-400} compute-sanitizer --tool racecheck ${TESTS:-$D/micromix_tests} --gtest_filter="$race" > "$OUT/${tag}_racecheck.log" 2>&1
  echo "racecheck rc=$?"; grep -E "RACECHECK SUMMARY|ERROR SUMMARY|PASSED|FAILED" "$OUT/${tag}_racecheck.log" | head -5
}

# bench NAME PATTERN [VAR=VALUE ...] -- ARGS...: one bench_gemm run ($EXE, default $D/bench_gemm) with
# those environment variables into $OUT/${TAG}_NAME.txt (TAG: the runner's session, e.g. s12), then its
# rows whose kernel matches PATTERN (layer, M, mix and kernel, us, x cuBLASLt FP8), four per line.
bench() {
  local name=$1 pattern=$2 envs=()
  shift 2
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  env "${envs[@]}" timeout 200 "${EXE:-$D/bench_gemm}" "$@" > "$OUT/${TAG}_$name.txt" 2>&1
  echo "== $name rc=$?"
  grep -E "$pattern" "$OUT/${TAG}_$name.txt" | awk -F'|' '{print $2, $3, $8, $9, $13}' | sed 's/ prepared weights ([^)]*)//' | paste - - - -
}

# linear NAME ARGS...: one bench_decode_linear run ($D/bench_decode_linear ARGS) into $OUT/${TAG}_linear_NAME.txt
# (+ .json), then its table rows.
linear() {
  local name=$1; shift
  timeout 300 $D/bench_decode_linear "$@" --json "$OUT/${TAG}_linear_$name.json" > "$OUT/${TAG}_linear_$name.txt" 2>&1
  echo "== linear $name rc=$?"; grep -E '^\| [a-z_]+ \| [0-9]' "$OUT/${TAG}_linear_$name.txt"
}
