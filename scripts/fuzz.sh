#!/usr/bin/env bash
# Builds micromix's libFuzzer targets (clang, AddressSanitizer + UBSan) and runs each for a while.
#
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]     (default: 120 s each; all of tests/fuzz/fuzz_*.cpp)
#
# Each target starts from tests/data/malformed/<kind>/ and keeps its growing corpus in
# $BUILD_DIR/corpus/<target>/. A crash, leak, timeout or out-of-memory leaves its input in
# $BUILD_DIR/artifacts/ and the script exits non-zero. To keep an input for the regression test
# (tests/io/test_malformed_corpus.cpp, run in CI), minimize it and copy it into the corpus:
#   $BUILD_DIR/fuzz_safetensors -minimize_crash=1 -runs=10000 ARTIFACT
#   cp minimized-from-... tests/data/malformed/safetensors/fuzz-<what>.safetensors
# Needs clang and libclang-rt-dev (scripts/deps.sh installs both).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build-fuzz}
SECS=${1:-120}
shift || true
targets=("$@")
if ((${#targets[@]} == 0)); then
  for f in tests/fuzz/fuzz_*.cpp; do targets+=("$(basename "$f" .cpp)"); done
fi
# The library itself gets coverage instrumentation and ASan (fuzzer-no-link); the targets link
# libFuzzer. -I src: the targets call internal parsers (io/gguf.hpp, io/hf_config.hpp).
CC=clang CXX=clang++ cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMICROMIX_FUZZ=ON \
  -DMICROMIX_CUDA=OFF -DMICROMIX_BENCH=OFF \
  "-DCMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -I$PWD/src" >/dev/null
cmake --build "$BUILD_DIR" -j "${JOBS:-$(nproc)}" --target "${targets[@]}"

seeds_for() {
  case "$1" in
    fuzz_safetensors) echo tests/data/malformed/safetensors ;;
    fuzz_gguf) echo tests/data/malformed/gguf ;;
    fuzz_hf_json) echo tests/data/malformed/hf_json ;;
    *) echo "" ;;
  esac
}

status=0
mkdir -p "$BUILD_DIR/artifacts"
for t in "${targets[@]}"; do
  corpus="$BUILD_DIR/corpus/$t"
  mkdir -p "$corpus"
  echo "== $t for ${SECS}s (corpus $corpus)"
  # -rss_limit_mb: a parser that allocates by a count read from the file shows up as OOM here.
  if ! "$BUILD_DIR/$t" "$corpus" $(seeds_for "$t") -max_total_time="$SECS" -max_len=65536 -timeout=10 \
      -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$BUILD_DIR/artifacts/$t-" 2>"$BUILD_DIR/$t.log"; then
    echo "!! $t failed; see $BUILD_DIR/$t.log and $BUILD_DIR/artifacts/"
    tail -40 "$BUILD_DIR/$t.log"
    status=1
  else
    grep -E "stat::number_of_executed_units|cov:" "$BUILD_DIR/$t.log" | tail -2
  fi
done
exit $status
