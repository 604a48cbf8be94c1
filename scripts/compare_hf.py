#!/usr/bin/env python3
"""Checks micromix's float forward pass and tokenizer against Hugging Face transformers.

    python3 scripts/compare_hf.py --micromix build/micromix --model MODEL.gguf --workdir /tmp/cmp

1. `micromix convert` writes the GGUF's weights as a Hugging Face directory (float32).
2. For each prompt, `micromix logits` gives our token ids and logits (n_tokens, vocab); transformers
   runs the converted model (float32, CUDA when available, TF32 off) on the SAME ids, so the
   logits comparison isolates the forward pass: max |diff|, mean KL(hf || ours) of the softmaxes,
   top-1 agreement.
3. AutoTokenizer's ids for each prompt and a set of varied texts must equal ours.

Prints markdown tables; exits 1 when any mean KL exceeds --kl-max (default 1e-4), any ids differ
or a run fails. Needs numpy, torch, transformers (offline is fine). With --tokenizer-only, only the
`tokenizers` package is needed and logits are not compared.
"""
import argparse
import json
import math
import os
import subprocess
import sys

import numpy as np

PROMPTS = [
    "The capital of France is",
    "Once upon a time, in a small village by the sea, there lived an old fisherman who",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return",
    "Q: What is 1234 + 5678?\nA:",
    "<|im_start|>user\nWhat is the boiling point of water?<|im_end|>\n<|im_start|>assistant\n",
]

# Tokenizer-only texts: whitespace runs, digits, contractions, punctuation, non-ASCII, emoji.
TEXTS = [
    "Hello world",
    " leading space and  double  spaces   ",
    "Numbers: 3.14159, 1,000,000 and 2026-11-25.",
    "I'm sure they'll say it's fine; we've DONE it, haven't WE?",
    "tabs\tand\nnewlines\n\n\nand \r\n windows",
    "Ünïcödé: naïve café, Straße, Ελληνικά, русский, 日本語のテキスト, 한국어",
    "emoji 🙂🚀 and symbols © ™ → ∑ ∞",
    "code: for (int i = 0; i < n; ++i) { x[i] += y[i] * 2; }  // done",
    "URLs like https://example.com/path?q=1&r=two#frag",
    "MiXeD CaSe WoRdS and ALLCAPS and lowercase",
]


def run(cmd):
    """Runs a command; returns stdout. Raises with the command's stderr on failure."""
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise RuntimeError("command failed (%d): %s\n%s" % (p.returncode, " ".join(cmd), p.stderr.strip()))
    return p.stdout


def our_logits(args, text, out_path, want_logits=True):
    """(ids, logits or None) from `micromix logits`: ids are the JSON array on stdout."""
    stdout = run([args.micromix, "logits", "--model", args.model, "--prompt", text, "--out", out_path])
    lines = [l for l in stdout.splitlines() if l.strip().startswith("[")]
    if not lines:
        raise RuntimeError("`micromix logits` printed no token ids: %r" % stdout[-500:])
    ids = json.loads(lines[-1])
    if not want_logits:
        return ids, None
    raw = np.fromfile(out_path, dtype="<f4")
    if raw.size % len(ids) != 0:
        raise RuntimeError("%s has %d floats, not a multiple of %d tokens" % (out_path, raw.size, len(ids)))
    return ids, raw.reshape(len(ids), -1).astype(np.float64)


def log_softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def compare_logits(hf, ours):
    """max |diff|, mean over tokens of KL(hf || ours), top-1 agreement; float64 throughout."""
    lp, lq = log_softmax(hf), log_softmax(ours)
    kl = (np.exp(lp) * (lp - lq)).sum(axis=-1)
    return float(np.abs(hf - ours).max()), float(kl.mean()), float((hf.argmax(-1) == ours.argmax(-1)).mean())


def short(text, n=40):
    s = text.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r").replace("|", "\\|")
    return s if len(s) <= n else s[: n - 3] + "..."


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--micromix", required=True, help="path of the micromix binary")
    ap.add_argument("--model", required=True, help="GGUF file (or HF directory) micromix reads")
    ap.add_argument("--workdir", required=True, help="scratch directory (the converted model goes to WORKDIR/hf)")
    ap.add_argument("--kl-max", type=float, default=1e-4, help="fail when a prompt's mean KL exceeds this")
    ap.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    ap.add_argument("--tokenizer-only", action="store_true", help="compare token ids only (needs `tokenizers`)")
    args = ap.parse_args()

    os.makedirs(args.workdir, exist_ok=True)
    hf_dir = os.path.join(args.workdir, "hf")
    print(run([args.micromix, "convert", "--model", args.model, "--out", hf_dir, "--force"]).strip(), file=sys.stderr)

    if args.tokenizer_only:
        from tokenizers import Tokenizer

        tk = Tokenizer.from_file(os.path.join(hf_dir, "tokenizer.json"))
        hf_encode = lambda t: tk.encode(t, add_special_tokens=True).ids
    else:
        import torch
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.backends.cuda.matmul.allow_tf32 = False  # reference precision: true float32 GEMMs
        torch.backends.cudnn.allow_tf32 = False
        torch.set_float32_matmul_precision("highest")
        device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
        tok = AutoTokenizer.from_pretrained(hf_dir)
        hf_encode = lambda t: list(tok(t, add_special_tokens=True)["input_ids"])
        try:  # transformers 5 spells it dtype, 4.x torch_dtype
            model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32, attn_implementation="eager")
        except TypeError:
            model = AutoModelForCausalLM.from_pretrained(hf_dir, torch_dtype=torch.float32, attn_implementation="eager")
        model = model.to(device).eval()
        print("transformers %s, torch %s, device %s" % (transformers.__version__, torch.__version__, device),
              file=sys.stderr)

    failures = []
    out_path = os.path.join(args.workdir, "logits.f32")
    if not args.tokenizer_only:
        print("| prompt | tokens | max abs diff | mean KL(hf‖ours) | top-1 agree | ids = HF |")
        print("|---|---:|---:|---:|---:|:---:|")
        for text in PROMPTS:
            ids, ours = our_logits(args, text, out_path)
            with torch.no_grad():
                hf = model(torch.tensor([ids], device=device)).logits[0].double().cpu().numpy()
            if hf.shape != ours.shape:
                failures.append("logits shape %s (HF) vs %s (ours) for %r" % (hf.shape, ours.shape, text))
                continue
            max_abs, kl, top1 = compare_logits(hf, ours)
            same_ids = hf_encode(text) == ids
            print("| %s | %d | %.3g | %.3g | %.3f | %s |" % (short(text), len(ids), max_abs, kl, top1,
                                                            "yes" if same_ids else "**no**"))
            if not (kl <= args.kl_max) or not math.isfinite(max_abs):
                failures.append("mean KL %.3g > %.3g for %r" % (kl, args.kl_max, text))
            if not same_ids:
                failures.append("token ids differ for %r: HF %s, ours %s" % (text, hf_encode(text), ids))
        print()

    print("| text | HF tokens | our tokens | ids equal |")
    print("|---|---:|---:|:---:|")
    for text in (TEXTS + PROMPTS) if args.tokenizer_only else TEXTS:
        ids, _ = our_logits(args, text, out_path, want_logits=False)
        hf_ids = hf_encode(text)
        print("| %s | %d | %d | %s |" % (short(text), len(hf_ids), len(ids), "yes" if hf_ids == ids else "**no**"))
        if hf_ids != ids:
            first = next((i for i, (a, b) in enumerate(zip(hf_ids, ids)) if a != b), min(len(hf_ids), len(ids)))
            failures.append("token ids differ for %r from position %d: HF %s, ours %s"
                            % (text, first, hf_ids[first:first + 8], ids[first:first + 8]))

    if failures:
        print("\nFAILED:\n" + "\n".join("- " + f for f in failures))
        return 1
    print("\nOK: every mean KL <= %g and all token ids equal" % args.kl_max if not args.tokenizer_only
          else "\nOK: all token ids equal")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, OSError, ImportError) as e:
        print("compare_hf: error: %s" % e, file=sys.stderr)
        sys.exit(2)
