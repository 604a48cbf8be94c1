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
# Each engine runs with $THREADS threads and with 1 thread; with 1 thread the process CPU time
# gives tokens per CPU-second, a number that survives a busy machine better than wall time.
for t in "$THREADS" 1; do
  echo "== micromix (float32), $t thread(s); CPU column = process CPU time =="
  OMP_NUM_THREADS=$t MICROMIX_MODEL=$MODEL "$BUILD_DIR/bench_forward" --benchmark_filter='^BM_(Prefill|Decode)' 2>&1 | grep -E "^BM_|Benchmark"
done

echo "== llama.cpp (llama-cpp-python) =="
for t in "$THREADS" 1; do
echo "-- $t thread(s) --"
"$PYTHON" - "$MODEL" "$t" <<'PY'
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
prefill, decode, prefill_cpu, decode_cpu = [], [], [], []
for rep in range(3):
    llm.reset()
    t0, c0 = time.perf_counter(), time.process_time()
    llm.eval(prompt)
    t1, c1 = time.perf_counter(), time.process_time()
    for _ in range(64):
        last = llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1)  # the last evaluated row
        nxt = int(np.argmax(np.ctypeslib.as_array(last, shape=(llm.n_vocab(),))))
        llm.eval([nxt])
    t2, c2 = time.perf_counter(), time.process_time()
    prefill.append(512 / (t1 - t0)); prefill_cpu.append(512 / (c1 - c0))
    decode.append(64 / (t2 - t1)); decode_cpu.append(64 / (c2 - c1))
runs = lambda v: ", ".join(f"{x:.1f}" for x in v)
print(f"prefill 512: {np.median(prefill):.1f} tokens/s wall (runs {runs(prefill)}); "
      f"{np.median(prefill_cpu):.1f} tokens per CPU-s")
print(f"decode 64 after 512: {np.median(decode):.1f} tokens/s wall (runs {runs(decode)}); "
      f"{np.median(decode_cpu):.1f} tokens per CPU-s")
PY
done
