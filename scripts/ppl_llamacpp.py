#!/usr/bin/env python3
"""Cross-check of `micromix ppl --llamacpp` against llama.cpp itself (through llama-cpp-python).

llama.cpp's `llama-perplexity` tokenizes the whole text (BOS first when the model asks for one),
cuts it into chunks of n_ctx tokens, replaces each chunk's first token by BOS when the model adds
BOS, and scores only the second half of each chunk. This script does the same through the
llama-cpp-python API (the PyPI wheel has no llama-perplexity binary) and runs micromix on the same
text, so the two conventions can be compared on one model. llama.cpp computes with the GGUF's own
quantized weights; micromix dequantizes them to float32, so the numbers agree to about a percent,
not exactly.

usage: ppl_llamacpp.py --micromix BUILD/micromix --model M.gguf --text FILE [--ctx 512] [--chunks 16]
"""
import argparse
import math
import re
import subprocess
import sys
import time

import numpy as np
from llama_cpp import Llama
import llama_cpp


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--micromix", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--text", required=True)
    ap.add_argument("--ctx", type=int, default=512)
    ap.add_argument("--chunks", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()

    text = open(a.text, encoding="utf-8").read()
    llm = Llama(model_path=a.model, n_ctx=a.ctx, n_batch=a.ctx, n_threads=a.threads, n_threads_batch=a.threads,
                logits_all=True, verbose=False)
    add_bos = bool(llama_cpp.llama_vocab_get_add_bos(llama_cpp.llama_model_get_vocab(llm.model)))
    toks = llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=False)
    n_chunks = min(a.chunks, len(toks) // a.ctx)
    need = n_chunks * a.ctx
    first = a.ctx // 2
    t0 = time.time()
    nll, count = 0.0, 0
    for c in range(n_chunks):
        chunk = list(toks[c * a.ctx:(c + 1) * a.ctx])
        if add_bos:
            chunk[0] = llm.token_bos()
        llm.reset()
        llm.eval(chunk)
        logits = np.array(llm.scores[: a.ctx], dtype=np.float64)
        for p in range(first, a.ctx - 1):
            row = logits[p]
            m = row.max()
            nll += -(row[chunk[p + 1]] - m - math.log(np.exp(row - m).sum()))
            count += 1
    llama_ppl = math.exp(nll / count)
    print(f"llama.cpp {llama_cpp.__version__}: {n_chunks} chunks of {a.ctx}, {count} scored, "
          f"add_bos={add_bos}, PPL {llama_ppl:.4f} ({time.time() - t0:.0f} s)")

    out = subprocess.run([a.micromix, "ppl", "--model", a.model, "--text", a.text, "--ctx", str(a.ctx),
                          "--llamacpp", "--max-tokens", str(need), "--quiet"],
                         check=True, capture_output=True, text=True).stdout
    mm_ppl = float(re.search(r"^ppl: ([0-9.]+)", out, re.M).group(1))
    mm_pred = int(re.search(r"^predicted: ([0-9]+)", out, re.M).group(1))
    print(f"micromix --llamacpp: {mm_pred} scored, PPL {mm_ppl:.4f}")
    print(f"scored positions equal: {mm_pred == count}; PPL ratio micromix/llama.cpp: {mm_ppl / llama_ppl:.4f}")
    return 0 if mm_pred == count else 1


if __name__ == "__main__":
    sys.exit(main())
