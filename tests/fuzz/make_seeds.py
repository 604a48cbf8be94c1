#!/usr/bin/env python3
"""Writes the hand-made part of tests/data/malformed/: small valid files (fuzzer seeds) and
deliberately broken ones, one per way of being wrong. Files the fuzzers found are added next to
them by hand (crash-*, see README.md). Re-running overwrites only the files named here.

    python3 tests/fuzz/make_seeds.py
"""
import json
import os
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "malformed")


def put(kind, name, data):
    d = os.path.join(ROOT, kind)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


# ---- safetensors -------------------------------------------------------------------------------

def st(header, data=b"", length=None):
    h = header if isinstance(header, bytes) else json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<Q", len(h) if length is None else length) + h + data


def entry(dtype, shape, b, e):
    return {"dtype": dtype, "shape": shape, "data_offsets": [b, e]}


ok = {"a": entry("F32", [2, 2], 0, 16), "b": entry("BF16", [3], 16, 22), "c": entry("I64", [], 24, 32),
      "__metadata__": {"format": "pt"}}
put("safetensors", "ok_small.safetensors", st(ok, bytes(range(32))))
put("safetensors", "ok_empty_tensor.safetensors", st({"z": entry("F16", [0, 4], 0, 0)}))
put("safetensors", "short_length.safetensors", b"\x10\x00\x00")
put("safetensors", "length_past_end.safetensors", st(ok, bytes(32), length=1000))
put("safetensors", "length_huge.safetensors", st(ok, bytes(32), length=2**64 - 1))
put("safetensors", "not_json.safetensors", st(b"{\"a\": [1, 2", bytes(8)))
put("safetensors", "array_header.safetensors", st([1, 2, 3]))
put("safetensors", "bad_dtype.safetensors", st({"a": entry("F64", [1], 0, 8)}, bytes(8)))
put("safetensors", "negative_dim.safetensors", st({"a": entry("F32", [-1], 0, 4)}, bytes(4)))
put("safetensors", "float_dim.safetensors", st({"a": entry("F32", [1.0], 0, 4)}, bytes(4)))
put("safetensors", "offsets_past_end.safetensors", st({"a": entry("F32", [4], 0, 16)}, bytes(8)))
put("safetensors", "offsets_reversed.safetensors", st({"a": entry("U8", [0], 8, 0)}, bytes(8)))
put("safetensors", "overlap.safetensors",
    st({"a": entry("F32", [2], 0, 8), "b": entry("F32", [2], 4, 12)}, bytes(12)))
put("safetensors", "size_mismatch.safetensors", st({"a": entry("F32", [3], 0, 8)}, bytes(8)))
put("safetensors", "dims_overflow.safetensors",
    st({"a": entry("F32", [2**32, 2**32, 4], 0, 0)}))
put("safetensors", "duplicate_name.safetensors",
    st(b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}',
       bytes(2)))
put("safetensors", "metadata_not_strings.safetensors", st({"__metadata__": {"k": 1}}))
put("safetensors", "invalid_utf8_name.safetensors", st(b'{"\xff\xfe":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"x"))
put("safetensors", "deep_nesting.safetensors", st(b"[" * 5000 + b"]" * 5000))

# ---- GGUF --------------------------------------------------------------------------------------

def gstr(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def kv(key, vtype, payload):
    return gstr(key) + struct.pack("<I", vtype) + payload


U32, F32, STRING, ARRAY, BOOL = 4, 6, 8, 9, 7


def gguf(kvs, tensors, version=3, n_tensors=None, n_kv=None, align=32, magic=b"GGUF"):
    """tensors: (name, ne innermost-first, ggml type, data)."""
    out = magic + struct.pack("<IQQ", version, len(tensors) if n_tensors is None else n_tensors,
                              len(kvs) if n_kv is None else n_kv)
    out += b"".join(kvs)
    offsets, off = [], 0
    for name, ne, t, data in tensors:
        offsets.append(off)
        off = (off + len(data) + align - 1) // align * align
    for (name, ne, t, data), o in zip(tensors, offsets):
        out += gstr(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", n) for n in ne)
        out += struct.pack("<IQ", t, o)
    out += bytes((-len(out)) % align)
    for (name, ne, t, data), o in zip(tensors, offsets):
        out += data + bytes((-len(data)) % align)
    return out


def f32s(n, start=0.0):
    return struct.pack("<%df" % n, *[start + 0.01 * i for i in range(n)])


def tiny_llama(hidden=8, heads=2, layers=1, ffn=8, vocab=4):
    a = "llama"
    kvs = [kv("general.architecture", STRING, gstr(a)),
           kv(a + ".block_count", U32, struct.pack("<I", layers)),
           kv(a + ".embedding_length", U32, struct.pack("<I", hidden)),
           kv(a + ".feed_forward_length", U32, struct.pack("<I", ffn)),
           kv(a + ".attention.head_count", U32, struct.pack("<I", heads)),
           kv(a + ".attention.layer_norm_rms_epsilon", F32, struct.pack("<f", 1e-5)),
           kv("tokenizer.ggml.model", STRING, gstr("gpt2")),
           kv("tokenizer.ggml.tokens", ARRAY, struct.pack("<IQ", STRING, 4) + b"".join(gstr(t) for t in "abcd")),
           kv("tokenizer.ggml.merges", ARRAY, struct.pack("<IQ", STRING, 0))]
    ts = [("token_embd.weight", [hidden, vocab], 0, f32s(hidden * vocab)),
          ("output_norm.weight", [hidden], 0, f32s(hidden))]
    for l in range(layers):
        p = "blk.%d." % l
        for n, ne in [("attn_norm.weight", [hidden]), ("attn_q.weight", [hidden, hidden]),
                      ("attn_k.weight", [hidden, hidden]), ("attn_v.weight", [hidden, hidden]),
                      ("attn_output.weight", [hidden, hidden]), ("ffn_norm.weight", [hidden]),
                      ("ffn_gate.weight", [hidden, ffn]), ("ffn_up.weight", [hidden, ffn]),
                      ("ffn_down.weight", [ffn, hidden])]:
            size = 1
            for d in ne:
                size *= d
            ts.append((p + n, ne, 0, f32s(size)))
    return kvs, ts


kvs, ts = tiny_llama()
put("gguf", "ok_tiny_llama.gguf", gguf(kvs, ts))
put("gguf", "ok_empty.gguf", gguf([], []))
put("gguf", "bad_magic.gguf", gguf(kvs, ts, magic=b"GGUG"))
put("gguf", "version_1.gguf", gguf(kvs, ts, version=1))
put("gguf", "truncated_header.gguf", gguf(kvs, ts)[:40])
put("gguf", "truncated_data.gguf", gguf(kvs, ts)[:-64])
put("gguf", "n_tensors_huge.gguf", gguf(kvs, ts, n_tensors=2**62))
put("gguf", "n_kv_huge.gguf", gguf(kvs, ts, n_kv=2**63 - 1))
put("gguf", "string_length_huge.gguf",
    b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 2**63) + b"key")
put("gguf", "array_count_huge.gguf",
    b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + gstr("k") + struct.pack("<IIQ", ARRAY, U32, 2**61))
put("gguf", "nested_arrays.gguf",
    b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + gstr("k") + struct.pack("<I", ARRAY)
    + struct.pack("<IQ", ARRAY, 1) * 2000)
put("gguf", "bad_value_type.gguf", b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + gstr("k") + struct.pack("<I", 99))
put("gguf", "bad_tensor_type.gguf", gguf(kvs, [("token_embd.weight", [8, 4], 77, f32s(32))]))
put("gguf", "dims_overflow.gguf", gguf(kvs, [("x", [2**32, 2**32, 16], 0, b"")]))
put("gguf", "zero_alignment.gguf", gguf(kvs + [kv("general.alignment", U32, struct.pack("<I", 0))], ts))
put("gguf", "odd_alignment.gguf", gguf(kvs + [kv("general.alignment", U32, struct.pack("<I", 7))], ts))
kvs_bad = [k for k in kvs if b"block_count" not in k]
put("gguf", "missing_block_count.gguf", gguf(kvs_bad, ts))
kvs_heads = [k for k in kvs if b"head_count" not in k] + [kv("llama.attention.head_count", U32, struct.pack("<I", 3))]
put("gguf", "heads_do_not_divide.gguf", gguf(kvs_heads, ts))
put("gguf", "layers_huge.gguf",
    gguf([k for k in kvs if b"block_count" not in k] + [kv("llama.block_count", U32, struct.pack("<I", 2**30))], ts))

# ---- Hugging Face JSON (config.json / tokenizer.json) ---------------------------------------------

cfg = {"architectures": ["LlamaForCausalLM"], "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
       "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100, "rms_norm_eps": 1e-5}
put("hf_json", "ok_config.json", json.dumps(cfg))
put("hf_json", "config_strings.json", json.dumps(dict(cfg, hidden_size="64")))
put("hf_json", "config_huge_layers.json", json.dumps(dict(cfg, num_hidden_layers=10**18)))
put("hf_json", "config_zero_heads.json", json.dumps(dict(cfg, num_attention_heads=0)))
put("hf_json", "config_kv_not_dividing.json", json.dumps(dict(cfg, num_key_value_heads=3)))
put("hf_json", "config_rope_yarn.json", json.dumps(dict(cfg, rope_scaling={"rope_type": "yarn", "factor": 4})))
put("hf_json", "config_rope_llama3_partial.json", json.dumps(dict(cfg, rope_scaling={"rope_type": "llama3"})))
put("hf_json", "config_nan.json", json.dumps(cfg)[:-1] + ', "rope_theta": NaN}')
put("hf_json", "config_truncated.json", json.dumps(cfg)[:30])
vocab = {c: i for i, c in enumerate("abcd")}
vocab["ab"] = 4
tok = {"model": {"type": "BPE", "vocab": vocab, "merges": ["a b"]},
       "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True},
       "added_tokens": [{"id": 5, "content": "<s>", "special": True}]}
put("hf_json", "ok_tokenizer.json", json.dumps(tok))
put("hf_json", "tokenizer_sparse_ids.json", json.dumps(dict(tok, added_tokens=[{"id": 10**9, "content": "<s>"}])))
put("hf_json", "tokenizer_bad_merge.json", json.dumps({**tok, "model": {**tok["model"], "merges": [["a"], 3]}}))
put("hf_json", "tokenizer_unigram.json", json.dumps({**tok, "model": {"type": "Unigram", "vocab": [["a", 0.0]]}}))
put("hf_json", "tokenizer_null_pre.json", json.dumps(dict(tok, pre_tokenizer=None)))
put("hf_json", "tokenizer_dup_ids.json", json.dumps({**tok, "model": {**tok["model"], "vocab": {"a": 0, "b": 0}}}))
put("hf_json", "deep_nesting.json", "[" * 20000 + "]" * 20000)
print("wrote seeds under", os.path.normpath(ROOT))
