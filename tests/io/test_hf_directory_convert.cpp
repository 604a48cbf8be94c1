// `micromix convert`: a synthetic GGUF (written by the test's own GGUF writer) becomes a Hugging
// Face directory whose tensors, read back by the HF loader, are bit-identical (f32) or the
// round-to-nearest-even bf16 of the originals; --force guards an existing output.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <random>

#include <nlohmann/json.hpp>

#include "io/gguf.hpp"
#include "io/gguf_writer.hpp"
#include "io/hf_config.hpp"
#include "io/hf_directory.hpp"
#include "micromix/fetch.hpp"
#include "micromix/safetensors.hpp"
#include "tools/cli_runner.hpp"

using namespace micromix;
namespace w = testutil::gguf;
using json = nlohmann::json;

namespace {

std::string random_f32_bytes(int64_t n, std::mt19937& g) {
  std::normal_distribution<float> nd;
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = nd(g);
  return w::f32_bytes(v);
}

// llama.cpp's convert-time Q/K row permutation, written from its numpy expression:
// w.reshape(n_head, 2, rows/n_head/2, cols).swapaxes(1, 2).reshape(rows, cols).
std::string llama_cpp_permute(const std::string& hf, int64_t rows, int n_head) {
  const size_t rb = hf.size() / static_cast<size_t>(rows);
  const int64_t half = rows / n_head / 2;
  std::string out(hf.size(), '\0');
  for (int64_t h = 0; h < n_head; ++h)
    for (int64_t i = 0; i < half; ++i)
      for (int64_t s = 0; s < 2; ++s) {
        const int64_t dst = (h * half + i) * 2 + s, src = (h * 2 + s) * half + i;
        std::memcpy(out.data() + dst * rb, hf.data() + src * rb, rb);
      }
  return out;
}

struct Synthetic {
  std::string arch;
  int layers = 2, hidden = 64, ffn = 48, heads = 4, kv_heads = 2, vocab = 8;
  bool tied = true, bias = false;
  w::Writer wr;
  std::map<std::string, std::pair<std::vector<int64_t>, std::string>> hf;  // HF name -> shape, f32 bytes (HF order)

  Synthetic(std::string a, bool tied_, bool bias_, std::mt19937& g) : arch(std::move(a)), tied(tied_), bias(bias_) {
    wr.set("general.architecture", w::string(arch))
        .set(arch + ".block_count", w::u32(static_cast<uint32_t>(layers)))
        .set(arch + ".context_length", w::u32(2048))
        .set(arch + ".embedding_length", w::u32(static_cast<uint32_t>(hidden)))
        .set(arch + ".feed_forward_length", w::u32(static_cast<uint32_t>(ffn)))
        .set(arch + ".attention.head_count", w::u32(static_cast<uint32_t>(heads)))
        .set(arch + ".attention.head_count_kv", w::u32(static_cast<uint32_t>(kv_heads)))
        .set(arch + ".rope.freq_base", w::f32(100000.0f))
        .set(arch + ".attention.layer_norm_rms_epsilon", w::f32(1e-5f))
        .set("tokenizer.ggml.model", w::string("gpt2"))
        .set("tokenizer.ggml.pre", w::string(arch == "qwen2" ? "qwen2" : "smollm"))
        .set("tokenizer.ggml.tokens", w::string_array({"<s>", "</s>", "a", "b", "ab", "Ġ", "Ġa", "<tool>"}))
        .set("tokenizer.ggml.token_type", w::i32_array({3, 3, 1, 1, 1, 1, 1, 4}))
        .set("tokenizer.ggml.merges", w::string_array({"a b", "Ġ a"}))
        .set("tokenizer.ggml.bos_token_id", w::u32(0))
        .set("tokenizer.ggml.eos_token_id", w::u32(1))
        .set("tokenizer.ggml.add_bos_token", w::boolean(arch == "llama"));
    const int hd = hidden / heads;
    add("token_embd.weight", "model.embed_tokens.weight", {vocab, hidden}, 0, g);
    add("output_norm.weight", "model.norm.weight", {hidden}, 0, g);
    if (!tied) add("output.weight", "lm_head.weight", {vocab, hidden}, 0, g);
    const bool permute = arch == "llama";
    for (int l = 0; l < layers; ++l) {
      const std::string c = "blk." + std::to_string(l) + ".", h = "model.layers." + std::to_string(l) + ".";
      add(c + "attn_norm.weight", h + "input_layernorm.weight", {hidden}, 0, g);
      add(c + "attn_q.weight", h + "self_attn.q_proj.weight", {heads * hd, hidden}, permute ? heads : 0, g);
      add(c + "attn_k.weight", h + "self_attn.k_proj.weight", {kv_heads * hd, hidden}, permute ? kv_heads : 0, g);
      add(c + "attn_v.weight", h + "self_attn.v_proj.weight", {kv_heads * hd, hidden}, 0, g);
      if (bias) {
        add(c + "attn_q.bias", h + "self_attn.q_proj.bias", {heads * hd}, 0, g);
        add(c + "attn_k.bias", h + "self_attn.k_proj.bias", {kv_heads * hd}, 0, g);
        add(c + "attn_v.bias", h + "self_attn.v_proj.bias", {kv_heads * hd}, 0, g);
      }
      add(c + "attn_output.weight", h + "self_attn.o_proj.weight", {hidden, heads * hd}, 0, g);
      add(c + "ffn_norm.weight", h + "post_attention_layernorm.weight", {hidden}, 0, g);
      add(c + "ffn_gate.weight", h + "mlp.gate_proj.weight", {ffn, hidden}, 0, g);
      add(c + "ffn_up.weight", h + "mlp.up_proj.weight", {ffn, hidden}, 0, g);
      add(c + "ffn_down.weight", h + "mlp.down_proj.weight", {hidden, ffn}, 0, g);
    }
  }

  void add(const std::string& gguf_name, const std::string& hf_name, std::vector<int64_t> shape, int perm_heads,
           std::mt19937& g) {
    int64_t n = 1;
    for (auto d : shape) n *= d;
    const std::string bytes = random_f32_bytes(n, g);
    hf[hf_name] = {shape, bytes};
    std::vector<uint64_t> ne(shape.rbegin(), shape.rend());
    wr.tensor(gguf_name, ne, io::gguf::kGgmlF32, perm_heads ? llama_cpp_permute(bytes, shape[0], perm_heads) : bytes);
  }
};

uint16_t bf16_rne(float f) {  // finite inputs only
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

}  // namespace

TEST(HfConvert, GgufToHfDirectoryIsBitExactInF32) {
  std::mt19937 g(std::random_device{}());
  for (auto [arch, tied, bias] : {std::tuple{"llama", true, false}, {"qwen2", false, true}, {"mistral", false, false}}) {
    SCOPED_TRACE(arch);
    Synthetic s(arch, tied, bias, g);
    testutil::TempDir dir;
    testutil::write_file(dir.file("m.gguf"), s.wr.build());
    const std::string out = dir.file("hf");
    const auto res = testutil::run_cli("convert --model " + dir.file("m.gguf") + " --out " + out);
    ASSERT_EQ(res.exit_code, 0) << res.out;

    // What transformers reads: the plain files.
    const json cfg = json::parse(testutil::read_file(out + "/config.json"));
    EXPECT_EQ(cfg["model_type"], arch);
    EXPECT_EQ(cfg["hidden_size"], s.hidden);
    EXPECT_EQ(cfg["tie_word_embeddings"], tied);
    const SafetensorsSource raw({out + "/model.safetensors"});
    EXPECT_EQ(raw.metadata().at("format"), "pt");
    EXPECT_EQ(raw.names().size(), s.hf.size());
    for (const auto& [name, sb] : s.hf) {
      const TensorView* v = raw.find(name);
      ASSERT_NE(v, nullptr) << name;
      EXPECT_EQ(v->dtype, DType::f32);
      EXPECT_EQ(v->shape, sb.first) << name;
      ASSERT_EQ(v->data.size(), sb.second.size());
      EXPECT_EQ(std::memcmp(v->data.data(), sb.second.data(), sb.second.size()), 0) << name;
    }
    const json tc = json::parse(testutil::read_file(out + "/tokenizer_config.json"));
    EXPECT_EQ(tc["bos_token"], "<s>");
    EXPECT_EQ(tc["eos_token"], "</s>");

    // And micromix's own HF loader agrees with the GGUF loader on everything.
    const ModelSource a = load_model_source(dir.file("m.gguf"));
    const ModelSource b = io::load_hf_directory(out);
    EXPECT_EQ(b.config.arch, a.config.arch);
    EXPECT_EQ(b.config.n_layers, a.config.n_layers);
    EXPECT_EQ(b.config.head_dim, a.config.head_dim);
    EXPECT_EQ(b.config.rope_theta, a.config.rope_theta);
    EXPECT_EQ(b.config.rms_eps, a.config.rms_eps);
    EXPECT_EQ(b.config.tied_embeddings, a.config.tied_embeddings);
    EXPECT_EQ(b.config.qkv_bias, a.config.qkv_bias);
    EXPECT_EQ(b.tensors->names(), [&] {
      auto n = a.tensors->names();
      std::sort(n.begin(), n.end());
      return n;
    }());
    EXPECT_EQ(b.tokenizer.tokens, a.tokenizer.tokens);
    EXPECT_EQ(b.tokenizer.token_types, a.tokenizer.token_types);
    EXPECT_EQ(b.tokenizer.merges, a.tokenizer.merges);
    EXPECT_EQ(b.tokenizer.pre, a.tokenizer.pre);
    EXPECT_EQ(b.tokenizer.add_bos, a.tokenizer.add_bos);
    EXPECT_EQ(b.tokenizer.bos_id, a.tokenizer.bos_id);
    EXPECT_EQ(b.tokenizer.eos_id, a.tokenizer.eos_id);
  }
}

TEST(HfConvert, Bf16OutputIsRoundToNearestEven) {
  std::mt19937 g(std::random_device{}());
  Synthetic s("llama", false, false, g);
  testutil::TempDir dir;
  testutil::write_file(dir.file("m.gguf"), s.wr.build());
  const auto res = testutil::run_cli("convert --dtype bf16 -m " + dir.file("m.gguf") + " -o " + dir.file("hf"));
  ASSERT_EQ(res.exit_code, 0) << res.out;
  const ModelSource b = io::load_hf_directory(dir.file("hf"));
  for (const auto& [name, sb] : s.hf) {
    const TensorView* v = b.tensors->find(*io::canonical_from_hf(name));
    ASSERT_NE(v, nullptr) << name;
    ASSERT_EQ(v->dtype, DType::bf16);
    ASSERT_EQ(v->data.size() * 2, sb.second.size());
    for (size_t i = 0; i < v->data.size() / 2; ++i) {
      float f;
      std::memcpy(&f, sb.second.data() + 4 * i, 4);
      const uint16_t got = static_cast<uint16_t>(v->data[2 * i] | (v->data[2 * i + 1] << 8));
      ASSERT_EQ(got, bf16_rne(f)) << name << "[" << i << "]";
    }
  }
}

TEST(HfConvert, RefusesToOverwriteWithoutForceAndRejectsBadArguments) {
  std::mt19937 g(std::random_device{}());
  Synthetic s("llama", true, false, g);
  testutil::TempDir dir;
  testutil::write_file(dir.file("m.gguf"), s.wr.build());
  const std::string args = "convert --model " + dir.file("m.gguf") + " --out " + dir.file("hf");
  ASSERT_EQ(testutil::run_cli(args).exit_code, 0);
  const std::string before = testutil::read_file(dir.file("hf/model.safetensors"));
  auto res = testutil::run_cli(args);
  EXPECT_EQ(res.exit_code, 1) << res.out;
  EXPECT_NE(res.out.find("already exists"), std::string::npos) << res.out;
  EXPECT_EQ(testutil::read_file(dir.file("hf/model.safetensors")), before);
  res = testutil::run_cli(args + " --force --dtype bf16");
  EXPECT_EQ(res.exit_code, 0) << res.out;
  EXPECT_EQ(SafetensorsSource({dir.file("hf/model.safetensors")}).find("model.norm.weight")->dtype, DType::bf16);
  res = testutil::run_cli(args + " --force --dtype f16");
  EXPECT_EQ(res.exit_code, 1);
  EXPECT_NE(res.out.find("--dtype 'f16'"), std::string::npos) << res.out;
  res = testutil::run_cli("convert --model " + dir.file("none.gguf") + " --out " + dir.file("x"));
  EXPECT_EQ(res.exit_code, 1);
  EXPECT_FALSE(std::filesystem::exists(dir.file("x")));
}

// The real default model, when present: converts (bf16 keeps it small) and loads back with the
// same config, tensor names and tokenizer.
TEST(HfConvert, DefaultModelConvertsAndLoadsBack) {
  std::string path = default_model_path();
  if (const char* p = std::getenv("MICROMIX_MODEL"); p && *p) path = p;
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "default model not found at " << path << " (set MICROMIX_MODEL)";
  testutil::TempDir dir;
  const auto res = testutil::run_cli("convert --dtype bf16 --model " + path + " --out " + dir.file("hf"));
  ASSERT_EQ(res.exit_code, 0) << res.out;
  const ModelSource a = load_model_source(path);
  const ModelSource b = io::load_hf_directory(dir.file("hf"));
  EXPECT_EQ(b.config.n_layers, a.config.n_layers);
  EXPECT_EQ(b.config.hidden, a.config.hidden);
  EXPECT_EQ(b.config.vocab, a.config.vocab);
  EXPECT_EQ(b.config.tied_embeddings, a.config.tied_embeddings);
  EXPECT_EQ(b.tokenizer.tokens, a.tokenizer.tokens);
  EXPECT_EQ(b.tokenizer.merges, a.tokenizer.merges);
  EXPECT_EQ(b.tokenizer.pre, a.tokenizer.pre);
  EXPECT_EQ(b.tokenizer.eos_id, a.tokenizer.eos_id);
  EXPECT_EQ(b.tensors->names().size(), a.tensors->names().size());
}
