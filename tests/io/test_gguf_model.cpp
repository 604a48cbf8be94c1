// GGUF -> ModelSource: config keys, tokenizer spec, shapes in row-major order, the Llama Q/K row
// permutation undone (checked against a literal emulation of the converter's reshape/swapaxes),
// load_model_source dispatch, and the real default model when it is present.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>

#include "io/gguf.hpp"
#include "io/gguf_writer.hpp"
#include "micromix/error.hpp"
#include "micromix/fetch.hpp"
#include "micromix/model_source.hpp"
#include "tools/cli_runner.hpp"

using namespace micromix;
namespace g = micromix::io::gguf;
namespace w = testutil::gguf;

namespace {

std::mt19937& rng() {
  static std::mt19937 r(std::random_device{}());
  return r;
}

std::vector<float> random_floats(size_t n) {
  std::normal_distribution<float> nd;
  std::vector<float> v(n);
  for (auto& x : v) x = nd(rng());
  return v;
}

// llama.cpp's converter on a (rows, row_bytes) byte matrix, emulated literally:
// w.reshape(n_head, 2, rows/n_head/2, row).swapaxes(1, 2).reshape(rows, row). The result at index
// [h][i][s] (shape (n_head, hd/2, 2)) is the input at [h][s][i] (shape (n_head, 2, hd/2)).
std::string converter_permute(const std::string& w, int64_t rows, int n_head) {
  const size_t row_bytes = w.size() / static_cast<size_t>(rows);
  const int64_t half = rows / n_head / 2;
  std::string out(w.size(), '\0');
  size_t dst = 0;  // walk the output in row-major order of (n_head, half, 2)
  for (int64_t h = 0; h < n_head; ++h)
    for (int64_t i = 0; i < half; ++i)
      for (int64_t s = 0; s < 2; ++s) {
        const int64_t src_row = (h * 2 + s) * half + i;  // row-major index in (n_head, 2, half)
        std::memcpy(out.data() + dst, w.data() + static_cast<size_t>(src_row) * row_bytes, row_bytes);
        dst += row_bytes;
      }
  return out;
}

// Random q4_1 rows with finite fp16 scales: (rows, cols) -> rows * cols/32 blocks of 20 bytes.
std::string random_q4_1(int64_t rows, int64_t cols) {
  std::string b(static_cast<size_t>(rows * cols / 32 * 20), '\0');
  for (size_t blk = 0; blk < b.size() / 20; ++blk) {
    for (int k = 0; k < 2; ++k) {  // d and m: exponent 10..20, random mantissa and sign
      auto& r = rng();
      const uint16_t h = static_cast<uint16_t>(((r() & 1) << 15) | ((10 + r() % 10) << 10) | (r() & 1023));
      std::memcpy(b.data() + blk * 20 + 2 * k, &h, 2);
    }
    for (int j = 4; j < 20; ++j) b[blk * 20 + j] = static_cast<char>(rng()());
  }
  return b;
}

std::vector<float> dequant(DType t, std::vector<int64_t> shape, const std::string& bytes) {
  TensorView v;
  v.name = "ref";
  v.dtype = t;
  v.shape = std::move(shape);
  v.data = {reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()};
  return to_float(v);
}

// A tiny two-layer model. Hidden 64 (two q4_1 blocks per row), 4 heads of 16, 2 KV heads, ffn 32,
// vocab 5. Layer 0 stores Q/K in f32, layer 1 in q4_1. `hf` receives the Hugging Face-order bytes.
struct TinyModel {
  static constexpr int hidden = 64, heads = 4, kv_heads = 2, hd = 16, ffn = 32, vocab = 5;
  w::Writer wr;
  std::map<std::string, std::pair<DType, std::string>> hf;  // canonical name -> dtype, bytes

  explicit TinyModel(const std::string& arch, bool permute_qk, bool with_output = false, bool bias = false) {
    wr.set("general.architecture", w::string(arch))
        .set("general.name", w::string("tiny"))
        .set(arch + ".block_count", w::u32(2))
        .set(arch + ".context_length", w::u32(4096))
        .set(arch + ".embedding_length", w::u32(hidden))
        .set(arch + ".feed_forward_length", w::u32(ffn))
        .set(arch + ".attention.head_count", w::u32(heads))
        .set(arch + ".attention.head_count_kv", w::u32(kv_heads))
        .set(arch + ".rope.freq_base", w::f32(500000.0f))
        .set(arch + ".attention.layer_norm_rms_epsilon", w::f32(1e-6f))
        .set("tokenizer.ggml.model", w::string("gpt2"))
        .set("tokenizer.ggml.pre", w::string("smollm"))
        .set("tokenizer.ggml.tokens", w::string_array({"<s>", "</s>", "a", "b", "ab"}))
        .set("tokenizer.ggml.token_type", w::i32_array({3, 3, 1, 1, 1}))
        .set("tokenizer.ggml.merges", w::string_array({"a b"}))
        .set("tokenizer.ggml.bos_token_id", w::u32(0))
        .set("tokenizer.ggml.eos_token_id", w::u32(1))
        .set("tokenizer.ggml.padding_token_id", w::u32(1))
        .set("tokenizer.ggml.add_bos_token", w::boolean(true));
    add_f32("token_embd.weight", {vocab, hidden});
    add_f32("output_norm.weight", {hidden});
    if (with_output) add_f32("output.weight", {vocab, hidden});
    for (int l = 0; l < 2; ++l) {
      const std::string p = "blk." + std::to_string(l) + ".";
      const bool q = l == 1;
      add(p + "attn_q.weight", heads * hd, hidden, q, permute_qk ? heads : 0);
      add(p + "attn_k.weight", kv_heads * hd, hidden, q, permute_qk ? kv_heads : 0);
      add(p + "attn_v.weight", kv_heads * hd, hidden, q, 0);
      if (bias) {
        add_f32(p + "attn_q.bias", {heads * hd}, permute_qk ? heads : 0);
        add_f32(p + "attn_k.bias", {kv_heads * hd}, permute_qk ? kv_heads : 0);
        add_f32(p + "attn_v.bias", {kv_heads * hd});
      }
      add(p + "attn_output.weight", hidden, heads * hd, q, 0);
      add_f32(p + "attn_norm.weight", {hidden});
      add_f32(p + "ffn_norm.weight", {hidden});
      add(p + "ffn_gate.weight", ffn, hidden, q, 0);
      add(p + "ffn_up.weight", ffn, hidden, q, 0);
      add(p + "ffn_down.weight", hidden, ffn, q, 0);
    }
  }

  // shape is row-major (outermost first); GGUF stores ne reversed. perm_heads > 0 applies the
  // converter's Q/K permutation to the stored bytes.
  void put(const std::string& name, std::vector<int64_t> shape, DType t, uint32_t ggml, std::string bytes,
           int perm_heads) {
    hf[name] = {t, bytes};
    if (perm_heads) bytes = converter_permute(bytes, shape[0], perm_heads);
    std::vector<uint64_t> ne(shape.rbegin(), shape.rend());
    wr.tensor(name, ne, ggml, bytes);
  }
  void add_f32(const std::string& name, std::vector<int64_t> shape, int perm_heads = 0) {
    int64_t n = 1;
    for (auto d : shape) n *= d;
    put(name, shape, DType::f32, g::kGgmlF32, w::f32_bytes(random_floats(static_cast<size_t>(n))), perm_heads);
  }
  void add(const std::string& name, int64_t rows, int64_t cols, bool q4_1, int perm_heads) {
    if (q4_1)
      put(name, {rows, cols}, DType::q4_1, g::kGgmlQ4_1, random_q4_1(rows, cols), perm_heads);
    else
      add_f32(name, {rows, cols}, perm_heads);
  }
};

ModelSource load_bytes(const std::string& bytes, const testutil::TempDir& dir) {
  const std::string p = dir.file("model.gguf");
  testutil::write_file(p, bytes);
  return load_model_source(p);
}

std::string error_of(const std::string& bytes) {
  testutil::TempDir dir;
  try {
    load_bytes(bytes, dir);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "loaded without error";
  return "";
}

#define EXPECT_HAS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << "message: " << (haystack)

std::string real_model_path() {
  if (const char* p = std::getenv("MICROMIX_MODEL"); p && *p) return p;
  return default_model_path();
}

}  // namespace

TEST(GgufModel, LlamaConfigTokenizerAndUnpermutedQK) {
  TinyModel m("llama", /*permute_qk=*/true, false, /*bias=*/true);
  testutil::TempDir dir;
  const ModelSource s = load_bytes(m.wr.build(), dir);
  EXPECT_EQ(s.format, "gguf");
  const ModelConfig& c = s.config;
  EXPECT_EQ(c.arch, "llama");
  EXPECT_EQ(c.name, "tiny");
  EXPECT_EQ(c.n_layers, 2);
  EXPECT_EQ(c.hidden, TinyModel::hidden);
  EXPECT_EQ(c.ffn, TinyModel::ffn);
  EXPECT_EQ(c.n_heads, TinyModel::heads);
  EXPECT_EQ(c.n_kv_heads, TinyModel::kv_heads);
  EXPECT_EQ(c.head_dim, TinyModel::hd);
  EXPECT_EQ(c.vocab, TinyModel::vocab);
  EXPECT_EQ(c.max_ctx, 4096);
  EXPECT_EQ(c.rope_theta, 500000.0f);
  EXPECT_EQ(c.rms_eps, 1e-6f);
  EXPECT_EQ(c.rope_scaling.type, "none");
  EXPECT_TRUE(c.tied_embeddings);
  EXPECT_TRUE(c.qkv_bias);

  const TokenizerSpec& t = s.tokenizer;
  EXPECT_EQ(t.model, "gpt2");
  EXPECT_EQ(t.pre, "smollm");
  EXPECT_EQ(t.tokens, (std::vector<std::string>{"<s>", "</s>", "a", "b", "ab"}));
  EXPECT_EQ(t.token_types, (std::vector<int32_t>{3, 3, 1, 1, 1}));
  EXPECT_EQ(t.merges, (std::vector<std::string>{"a b"}));
  EXPECT_EQ(t.bos_id, 0);
  EXPECT_EQ(t.eos_id, 1);
  EXPECT_EQ(t.pad_id, 1);
  EXPECT_EQ(t.unk_id, -1);
  EXPECT_TRUE(t.add_bos);

  // Every tensor: canonical name, row-major shape, dtype, and values in Hugging Face order.
  EXPECT_EQ(s.tensors->names().size(), m.hf.size());
  for (const auto& [name, hf] : m.hf) {
    const TensorView& v = s.tensors->get(name);
    EXPECT_EQ(v.dtype, hf.first) << name;
    std::vector<int64_t> shape = v.shape;
    EXPECT_EQ(to_float(v), dequant(hf.first, shape, hf.second)) << name;
  }
  EXPECT_EQ(s.tensors->get("blk.0.attn_k.weight").shape, (std::vector<int64_t>{32, 64}));
  EXPECT_EQ(s.tensors->get("blk.1.ffn_down.weight").shape, (std::vector<int64_t>{64, 32}));
  EXPECT_EQ(s.tensors->get("output_norm.weight").shape, (std::vector<int64_t>{64}));
  EXPECT_EQ(s.tensors->find("output.weight"), nullptr);
}

TEST(GgufModel, Qwen2IsNotPermutedAndUntiedOutputIsKept) {
  TinyModel m("qwen2", /*permute_qk=*/false, /*with_output=*/true, /*bias=*/true);
  testutil::TempDir dir;
  const ModelSource s = load_bytes(m.wr.build(), dir);
  EXPECT_EQ(s.config.arch, "qwen2");
  EXPECT_FALSE(s.config.tied_embeddings);
  EXPECT_TRUE(s.config.qkv_bias);
  for (const auto& [name, hf] : m.hf) {
    const TensorView& v = s.tensors->get(name);
    EXPECT_EQ(to_float(v), dequant(hf.first, v.shape, hf.second)) << name;
  }
}

TEST(GgufModel, PermutationIsNotTheIdentity) {
  // Guards the test above: loading a llama file whose Q was NOT permuted must change Q.
  TinyModel m("llama", /*permute_qk=*/false);
  testutil::TempDir dir;
  const ModelSource s = load_bytes(m.wr.build(), dir);
  const auto& hf = m.hf["blk.0.attn_q.weight"];
  EXPECT_NE(to_float(s.tensors->get("blk.0.attn_q.weight")), dequant(hf.first, {64, 64}, hf.second));
  EXPECT_EQ(to_float(s.tensors->get("blk.0.attn_v.weight")),
            dequant(DType::f32, {32, 64}, m.hf["blk.0.attn_v.weight"].second));
}

TEST(GgufModel, ConfigErrorsNameTheKey) {
  {
    TinyModel m("llama", true);
    m.wr.kv.erase(m.wr.kv.begin());  // general.architecture
    EXPECT_HAS(error_of(m.wr.build()), "general.architecture");
  }
  {
    TinyModel m("llama", true);
    std::erase_if(m.wr.kv, [](auto& kv) { return kv.first == "llama.embedding_length"; });
    EXPECT_HAS(error_of(m.wr.build()), "missing key 'llama.embedding_length'");
  }
  {
    TinyModel m("llama", true);
    m.wr.set("llama.vocab_size", w::u32(7));
    EXPECT_HAS(error_of(m.wr.build()), "vocab_size 7");
  }
  {
    TinyModel m("llama", true);
    m.wr.set("llama.rope.scaling.type", w::string("yarn"));
    EXPECT_HAS(error_of(m.wr.build()), "yarn");
  }
  {
    TinyModel m("llama", true);
    std::erase_if(m.wr.kv, [](auto& kv) { return kv.first == "tokenizer.ggml.eos_token_id"; });
    m.wr.set("tokenizer.ggml.eos_token_id", w::u32(99));
    EXPECT_HAS(error_of(m.wr.build()), "99 is not a token id");
  }
  {
    TinyModel m("llama", true);
    std::erase_if(m.wr.kv, [](auto& kv) { return kv.first == "llama.attention.head_count_kv"; });
    m.wr.set("llama.attention.head_count_kv", w::u32(3));
    EXPECT_HAS(error_of(m.wr.build()), "not a multiple of head_count_kv 3");
  }
  {
    TinyModel m("llama", true);
    m.wr.tensors.erase(m.wr.tensors.begin());  // token_embd.weight
    EXPECT_HAS(error_of(m.wr.build()), "token_embd.weight");
  }
}

TEST(GgufModel, LoadModelSourceDispatch) {
  testutil::TempDir dir;
  try {
    load_model_source(dir.file("nope.gguf"));
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_HAS(e.what(), "no such file");
  }
  testutil::write_file(dir.file("text.gguf"), "hello, not a model");
  try {
    load_model_source(dir.file("text.gguf"));
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_HAS(e.what(), "GGUF file (it does not start with");
  }
  // A directory goes to the Hugging Face loader, which rejects an empty one.
  std::filesystem::create_directories(dir.file("hf"));
  EXPECT_THROW(load_model_source(dir.file("hf")), Error);
  // A corrupt GGUF (valid magic, truncated) fails with the reader's message.
  testutil::write_file(dir.file("cut.gguf"), std::string("GGUF\x03\x00\x00", 7));
  try {
    load_model_source(dir.file("cut.gguf"));
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_HAS(e.what(), "truncated");
  }
}

TEST(GgufModel, RealDefaultModel) {
  const std::string path = real_model_path();
  if (!std::filesystem::exists(path))
    GTEST_SKIP() << "default model not found at " << path << " (set MICROMIX_MODEL or run `micromix fetch`)";
  const ModelSource s = load_model_source(path);
  // Expected values from the model card (DESIGN.md section 5), not from this loader.
  const ModelConfig& c = s.config;
  EXPECT_EQ(c.arch, "llama");
  EXPECT_EQ(c.n_layers, 30);
  EXPECT_EQ(c.hidden, 576);
  EXPECT_EQ(c.ffn, 1536);
  EXPECT_EQ(c.n_heads, 9);
  EXPECT_EQ(c.n_kv_heads, 3);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.vocab, 49152);
  EXPECT_TRUE(c.tied_embeddings);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_EQ(s.tokenizer.tokens.size(), 49152u);
  EXPECT_EQ(s.tokenizer.model, "gpt2");
  EXPECT_FALSE(s.tokenizer.merges.empty());
  // 2 global tensors + 9 per layer, all convertible, all finite.
  EXPECT_EQ(s.tensors->names().size(), 2u + 9u * 30u);
  for (const std::string& n : s.tensors->names()) {
    const auto x = to_float(s.tensors->get(n));
    for (float v : x) ASSERT_TRUE(std::isfinite(v)) << n;
  }
  const TensorView& q = s.tensors->get("blk.0.attn_q.weight");
  EXPECT_EQ(q.shape, (std::vector<int64_t>{576, 576}));
  EXPECT_EQ(s.tensors->get("blk.0.attn_k.weight").shape, (std::vector<int64_t>{192, 576}));
  EXPECT_EQ(s.tensors->get("token_embd.weight").shape, (std::vector<int64_t>{49152, 576}));
}

namespace {
// Llama 3 RoPE scaling as Hugging Face computes it (_compute_llama3_parameters): new inverse
// frequencies; the GGUF stores old / new per frequency (rope_freqs.weight).
std::vector<float> llama3_divisors(int head_dim, double theta, double factor) {
  const double low = 1, high = 4, orig = 8192, pi = std::acos(-1.0);
  std::vector<float> d;
  for (int j = 0; j < head_dim; j += 2) {
    const double inv = 1.0 / std::pow(theta, static_cast<double>(j) / head_dim);
    const double wavelen = 2 * pi / inv;
    double nw;
    if (wavelen < orig / high) {
      nw = inv;
    } else if (wavelen > orig / low) {
      nw = inv / factor;
    } else {
      const double smooth = (orig / wavelen - low) / (high - low);
      nw = (1 - smooth) * inv / factor + smooth * inv;
    }
    d.push_back(static_cast<float>(inv / nw));
  }
  return d;
}
}  // namespace

TEST(GgufModel, Llama3RopeScalingFromRopeFreqs) {
  const auto div = llama3_divisors(TinyModel::hd, 500000.0, 8.0);
  bool has_medium = false;  // the tiny model must exercise the smooth band too
  for (float v : div) has_medium |= v > 1.01f && v < 7.99f;
  ASSERT_TRUE(has_medium);
  {
    TinyModel m("llama", true);
    m.wr.tensor("rope_freqs.weight", {div.size()}, g::kGgmlF32, w::f32_bytes(div));
    testutil::TempDir dir;
    const ModelSource s = load_bytes(m.wr.build(), dir);
    EXPECT_EQ(s.config.rope_scaling.type, "llama3");
    EXPECT_FLOAT_EQ(s.config.rope_scaling.factor, 8.0f);
    EXPECT_EQ(s.config.rope_scaling.original_max_position, 8192);
  }
  {
    auto bad = div;
    bad[div.size() / 2] *= 1.5f;
    TinyModel m("llama", true);
    m.wr.tensor("rope_freqs.weight", {bad.size()}, g::kGgmlF32, w::f32_bytes(bad));
    EXPECT_HAS(error_of(m.wr.build()), "does not match Llama 3 RoPE scaling");
  }
}

TEST(GgufModel, HostileConfigValuesFailFast) {
  TinyModel m("llama", true);
  std::erase_if(m.wr.kv, [](auto& kv) { return kv.first == "llama.block_count"; });
  m.wr.set("llama.block_count", w::u32(1u << 29));
  EXPECT_HAS(error_of(m.wr.build()), "block_count 536870912 is more than");
}

TEST(GgufModel, EmptyQRowsDoNotCrash) {
  // Found by fuzzing: a Llama Q weight with rows of zero length (ne[0] = 0) has no bytes to reorder.
  TinyModel m("llama", true);
  for (auto& t : m.wr.tensors)
    if (t.name == "blk.0.attn_q.weight") {
      t.ne = {0, 64};
      t.data.clear();
    }
  testutil::TempDir dir;
  const ModelSource s = load_bytes(m.wr.build(), dir);
  EXPECT_EQ(s.tensors->get("blk.0.attn_q.weight").data.size(), 0u);
  EXPECT_TRUE(to_float(s.tensors->get("blk.0.attn_q.weight")).empty());
}
