#!/usr/bin/env bash
# CPU inference speed, micromix vs llama.cpp, on the same GGUF and thread count: prefill of a
# 512-token prompt and 64 greedy generated tokens after it.
#   micromix: bench/bench_forward.cpp (weights dequantized to float32, OpenBLAS sgemm/sgemv)
#   llama.cpp: llama-cpp-python (`pip install llama-cpp-python`, which builds llama.cpp from
#              source; CMAKE_ARGS="-DGGML_NATIVE=ON" for this CPU). It runs the GGUF's own
#              quantized weights (Q4_1 for the default model), so it streams ~5x fewer bytes.
# Env: MICROMIX_MODEL (default: the cached default model), THREADS (2), BUILD_DIR (build),
#      PYTHON (a python with llama_cpp; default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${MICROMIX_MODEL:-${MICROMIX_CACHE:-$HOME/.cache/micromix}/SmolLM2-135M-Instruct.Q4_1.gguf}
THREADS=${THREADS:-2}
BUILD_DIR=${BUILD_DIR:-build}
PYTHON=${PYTHON:-python3}
[ -f "$MODEL" ] || { echo "bench_llamacpp: model $MODEL not found (micromix fetch)" >&2; exit 1; }

echo "date: $(date -u +%Y-%m-%dT%H:%MZ)  host: $(nproc) cpus, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "model: $MODEL  threads: $THREADS  load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== micromix (float32) =="
OMP_NUM_THREADS=$THREADS MICROMIX_MODEL=$MODEL "$BUILD_DIR/bench_forward" --benchmark_repetitions=3 \
  --benchmark_report_aggregates_only=true 2>&1 | grep -E "^BM_|Benchmark"

echo "== llama.cpp (llama-cpp-python) =="
"$PYTHON" - "$MODEL" "$THREADS" <<'PY'
import sys, time
import numpy as np
import llama_cpp
from llama_cpp import Llama

model, threads = sys.argv[1], int(sys.argv[2])
llm = Llama(model_path=model, n_ctx=1024, n_batch=512, n_threads=threads, n_threads_batch=threads,
            logits_all=False, verbose=False)
print(f"llama_cpp_python {llama_cpp.__version__}")
rng = np.random.default_rng(1234)
prompt = [int(t) for t in rng.integers(0, llm.n_vocab(), 512)]  # cost does not depend on the ids
prefill, decode = [], []
for rep in range(3):
    llm.reset()
    t0 = time.perf_counter()
    llm.eval(prompt)
    t1 = time.perf_counter()
    for _ in range(64):
        nxt = int(np.argmax(llm.scores[llm.n_tokens - 1]))
        llm.eval([nxt])
    t2 = time.perf_counter()
    prefill.append(512 / (t1 - t0))
    decode.append(64 / (t2 - t1))
print(f"prefill 512: {np.median(prefill):.1f} tokens/s (runs: {', '.join(f'{x:.1f}' for x in prefill)})")
print(f"decode 64 after 512: {np.median(decode):.1f} tokens/s (runs: {', '.join(f'{x:.1f}' for x in decode)})")
PY
