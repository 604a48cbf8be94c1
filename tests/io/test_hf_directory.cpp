// Hugging Face directories: synthetic checkpoints (random weights, hand-written config.json and
// tokenizer.json, one file or sharded) load with canonical names and the same bytes; broken ones
// give errors naming the file and key.
#include <gtest/gtest.h>

#include <random>

#include <nlohmann/json.hpp>

#include "io/hf_directory.hpp"
#include "micromix/error.hpp"
#include "micromix/safetensors.hpp"
#include "tools/cli_runner.hpp"

using namespace micromix;
using json = nlohmann::json;

namespace {

// GPT-2's byte -> printable character map, written out here independently of the tokenizer.
std::string byte_char(int b) {
  int cp = b;
  if (!((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255))) {
    int n = 0;
    for (int x = 0; x < b; ++x)
      if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255))) ++n;
    cp = 256 + n;
  }
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

// A small byte-level BPE tokenizer.json: 256 byte tokens, a few merges, two special tokens.
json tiny_tokenizer() {
  json vocab = json::object();
  for (int b = 0; b < 256; ++b) vocab[byte_char(b)] = b;
  const std::vector<std::string> merges = {"Ġ t", "h e", "Ġt he"};
  vocab["Ġt"] = 256;
  vocab["he"] = 257;
  vocab["Ġthe"] = 258;
  vocab["<s>"] = 259;
  vocab["</s>"] = 260;
  json added = json::array();
  for (int id : {259, 260})
    added.push_back({{"id", id}, {"content", id == 259 ? "<s>" : "</s>"}, {"special", true}, {"normalized", false},
                     {"lstrip", false}, {"rstrip", false}, {"single_word", false}});
  return {{"version", "1.0"},
          {"added_tokens", added},
          {"normalizer", nullptr},
          {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}}},
          {"post_processor", nullptr},
          {"decoder", {{"type", "ByteLevel"}}},
          {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}}};
}

struct Cfg {
  std::string hf_class = "LlamaForCausalLM";
  int layers = 2, hidden = 64, ffn = 96, heads = 4, kv_heads = 2, head_dim = 16, vocab = 261;
  bool tied = false, bias = false;
};

json config_json(const Cfg& c) {
  return {{"architectures", {c.hf_class}}, {"hidden_size", c.hidden}, {"intermediate_size", c.ffn},
          {"num_hidden_layers", c.layers}, {"num_attention_heads", c.heads}, {"num_key_value_heads", c.kv_heads},
          {"head_dim", c.head_dim}, {"vocab_size", c.vocab}, {"rms_norm_eps", 1e-5}, {"rope_theta", 50000.0},
          {"max_position_embeddings", 1024}, {"tie_word_embeddings", c.tied}, {"hidden_act", "silu"},
          {"bos_token_id", 259}, {"eos_token_id", 260}};
}

struct Owned {
  std::string hf, canonical;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};

// Random weights under HF names, with the canonical name each must load as (written out by hand).
std::vector<Owned> random_weights(const Cfg& c, std::mt19937& g) {
  std::vector<Owned> w;
  const DType dtypes[] = {DType::f32, DType::bf16, DType::f16};
  const auto add = [&](std::string hf, std::string canonical, std::vector<int64_t> shape) {
    Owned o{std::move(hf), std::move(canonical), dtypes[g() % 3], std::move(shape), {}};
    int64_t n = 1;
    for (auto d : o.shape) n *= d;
    o.bytes.resize(static_cast<size_t>(n) * (o.dtype == DType::f32 ? 4 : 2));
    for (auto& b : o.bytes) b = static_cast<uint8_t>(g());
    w.push_back(std::move(o));
  };
  const int64_t q = c.heads * c.head_dim, kv = c.kv_heads * c.head_dim;
  add("model.embed_tokens.weight", "token_embd.weight", {c.vocab, c.hidden});
  add("model.norm.weight", "output_norm.weight", {c.hidden});
  if (!c.tied) add("lm_head.weight", "output.weight", {c.vocab, c.hidden});
  for (int l = 0; l < c.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".", b = "blk." + std::to_string(l) + ".";
    add(p + "input_layernorm.weight", b + "attn_norm.weight", {c.hidden});
    add(p + "self_attn.q_proj.weight", b + "attn_q.weight", {q, c.hidden});
    add(p + "self_attn.k_proj.weight", b + "attn_k.weight", {kv, c.hidden});
    add(p + "self_attn.v_proj.weight", b + "attn_v.weight", {kv, c.hidden});
    add(p + "self_attn.o_proj.weight", b + "attn_output.weight", {c.hidden, q});
    add(p + "post_attention_layernorm.weight", b + "ffn_norm.weight", {c.hidden});
    add(p + "mlp.gate_proj.weight", b + "ffn_gate.weight", {c.ffn, c.hidden});
    add(p + "mlp.up_proj.weight", b + "ffn_up.weight", {c.ffn, c.hidden});
    add(p + "mlp.down_proj.weight", b + "ffn_down.weight", {c.hidden, c.ffn});
    if (c.bias) {
      add(p + "self_attn.q_proj.bias", b + "attn_q.bias", {q});
      add(p + "self_attn.k_proj.bias", b + "attn_k.bias", {kv});
      add(p + "self_attn.v_proj.bias", b + "attn_v.bias", {kv});
    }
  }
  return w;
}

void write_st(const std::string& path, const std::vector<Owned>& w) {
  std::vector<TensorView> v;
  for (const auto& o : w) v.push_back({o.hf, o.dtype, o.shape, o.bytes});
  write_safetensors(path, std::span<const TensorView>(v), {{"format", "pt"}});
}

void write_json(const std::string& path, const json& j) { testutil::write_file(path, j.dump(1)); }

// A complete directory; shards > 1 splits the weights round-robin and writes the index.
void write_dir(const testutil::TempDir& d, const Cfg& c, const std::vector<Owned>& w, int shards = 1) {
  write_json(d.file("config.json"), config_json(c));
  write_json(d.file("tokenizer.json"), tiny_tokenizer());
  if (shards == 1) {
    write_st(d.file("model.safetensors"), w);
    return;
  }
  json wm = json::object();
  for (int s = 0; s < shards; ++s) {
    std::vector<Owned> part;
    const std::string f = fmt::format("model-{:05}-of-{:05}.safetensors", s + 1, shards);
    for (size_t i = static_cast<size_t>(s); i < w.size(); i += static_cast<size_t>(shards)) {
      part.push_back(w[i]);
      wm[w[i].hf] = f;
    }
    write_st(d.file(f), part);
  }
  write_json(d.file("model.safetensors.index.json"), {{"metadata", {{"total_size", 0}}}, {"weight_map", wm}});
}

void expect_loaded(const ModelSource& m, const Cfg& c, const std::vector<Owned>& w) {
  EXPECT_EQ(m.format, "safetensors");
  EXPECT_EQ(m.config.n_layers, c.layers);
  EXPECT_EQ(m.config.hidden, c.hidden);
  EXPECT_EQ(m.config.ffn, c.ffn);
  EXPECT_EQ(m.config.n_heads, c.heads);
  EXPECT_EQ(m.config.n_kv_heads, c.kv_heads);
  EXPECT_EQ(m.config.head_dim, c.head_dim);
  EXPECT_EQ(m.config.vocab, c.vocab);
  EXPECT_EQ(m.config.max_ctx, 1024);
  EXPECT_FLOAT_EQ(m.config.rms_eps, 1e-5f);
  EXPECT_FLOAT_EQ(m.config.rope_theta, 50000.0f);
  EXPECT_EQ(m.config.tied_embeddings, c.tied);
  EXPECT_EQ(m.config.qkv_bias, c.bias);
  ASSERT_TRUE(m.tensors);
  EXPECT_EQ(m.tensors->names().size(), w.size());
  for (const auto& o : w) {
    const TensorView* v = m.tensors->find(o.canonical);
    ASSERT_NE(v, nullptr) << o.canonical;
    EXPECT_EQ(v->name, o.canonical);
    EXPECT_EQ(v->dtype, o.dtype) << o.canonical;
    EXPECT_EQ(v->shape, o.shape) << o.canonical;
    ASSERT_EQ(v->data.size(), o.bytes.size());
    EXPECT_TRUE(std::equal(o.bytes.begin(), o.bytes.end(), v->data.begin())) << o.canonical;
  }
  EXPECT_EQ(m.tokenizer.tokens.size(), 261u);
  EXPECT_EQ(m.tokenizer.tokens[258], "Ġthe");
  EXPECT_EQ(m.tokenizer.merges.size(), 3u);
  EXPECT_EQ(m.tokenizer.bos_id, 259);
  EXPECT_EQ(m.tokenizer.eos_id, 260);
}

Cfg random_cfg(std::mt19937& g) {
  Cfg c;
  const char* classes[] = {"LlamaForCausalLM", "Qwen2ForCausalLM", "MistralForCausalLM"};
  c.hf_class = classes[g() % 3];
  c.bias = c.hf_class == "Qwen2ForCausalLM";
  c.tied = g() % 2;
  c.layers = 1 + static_cast<int>(g() % 3);
  c.kv_heads = 1 + static_cast<int>(g() % 2);
  c.heads = c.kv_heads * (1 + static_cast<int>(g() % 3));
  c.head_dim = 8 * (1 + static_cast<int>(g() % 2));
  c.hidden = c.heads * c.head_dim + (g() % 2 ? 0 : 8);  // head_dim need not divide hidden
  c.ffn = 16 + 8 * static_cast<int>(g() % 4);
  return c;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(HfDirectory, LoadsSingleFileCheckpointsOfEveryFamily) {
  std::mt19937 g(std::random_device{}());
  for (int trial = 0; trial < 6; ++trial) {
    const Cfg c = random_cfg(g);
    const auto w = random_weights(c, g);
    testutil::TempDir d;
    write_dir(d, c, w);
    SCOPED_TRACE(c.hf_class + (c.tied ? " tied" : ""));
    const ModelSource m = io::load_hf_directory(d.path.string());
    expect_loaded(m, c, w);
    EXPECT_EQ(m.config.arch, c.hf_class == "LlamaForCausalLM" ? "llama" : c.hf_class == "Qwen2ForCausalLM" ? "qwen2" : "mistral");
    // Also through the generic entry point.
    expect_loaded(load_model_source(d.path.string()), c, w);
  }
}

TEST(HfDirectory, LoadsShardedCheckpoints) {
  std::mt19937 g(std::random_device{}());
  const Cfg c = random_cfg(g);
  const auto w = random_weights(c, g);
  testutil::TempDir d;
  write_dir(d, c, w, 3);
  expect_loaded(io::load_hf_directory(d.path.string()), c, w);
}

TEST(HfDirectory, TiedCheckpointWithAStoredLmHeadDropsIt) {
  std::mt19937 g(std::random_device{}());
  Cfg c;
  c.tied = true;
  auto w = random_weights(c, g);
  testutil::TempDir d;
  auto with_head = w;
  with_head.push_back(w[0]);
  with_head.back().hf = "lm_head.weight";
  write_dir(d, c, with_head);
  const ModelSource m = io::load_hf_directory(d.path.string());
  EXPECT_EQ(m.tensors->find("output.weight"), nullptr);
  expect_loaded(m, c, w);
}

TEST(HfDirectory, RopeScalingAndDefaults) {
  std::mt19937 g(std::random_device{}());
  Cfg c;
  const auto w = random_weights(c, g);
  testutil::TempDir d;
  write_dir(d, c, w);
  json cfg = config_json(c);
  cfg["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                         {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192}};
  cfg.erase("num_key_value_heads");  // defaults to num_attention_heads...
  cfg["num_key_value_heads"] = nullptr;
  write_json(d.file("config.json"), cfg);
  // ...which no longer matches the 2-head K/V weights: the shape check names the tensor.
  EXPECT_NE(error_of([&] { io::load_hf_directory(d.path.string()); }).find("self_attn.k_proj.weight"), std::string::npos);
  cfg["num_key_value_heads"] = c.kv_heads;
  write_json(d.file("config.json"), cfg);
  ModelSource m = io::load_hf_directory(d.path.string());
  EXPECT_EQ(m.config.rope_scaling.type, "llama3");
  EXPECT_FLOAT_EQ(m.config.rope_scaling.factor, 8.0f);
  EXPECT_FLOAT_EQ(m.config.rope_scaling.high_freq_factor, 4.0f);
  EXPECT_EQ(m.config.rope_scaling.original_max_position, 8192);
  // transformers 5 spelling.
  cfg.erase("rope_scaling");
  cfg.erase("rope_theta");
  cfg["rope_parameters"] = {{"rope_type", "default"}, {"rope_theta", 1234.0}};
  write_json(d.file("config.json"), cfg);
  m = io::load_hf_directory(d.path.string());
  EXPECT_EQ(m.config.rope_scaling.type, "none");
  EXPECT_FLOAT_EQ(m.config.rope_theta, 1234.0f);
}

TEST(HfDirectory, BrokenConfigsNameTheFileAndKey) {
  std::mt19937 g(std::random_device{}());
  Cfg c;
  const auto w = random_weights(c, g);
  testutil::TempDir d;
  write_dir(d, c, w);
  struct Case {
    std::function<void(json&)> edit;
    std::string want;
  };
  const Case cases[] = {
      {[](json& j) { j.erase("hidden_size"); }, "missing key 'hidden_size'"},
      {[](json& j) { j["hidden_size"] = "64"; }, "'hidden_size' must be an integer"},
      {[](json& j) { j["num_hidden_layers"] = -1; }, "'num_hidden_layers' = -1 is out of range"},
      {[](json& j) { j["intermediate_size"] = 1.5; }, "'intermediate_size' must be an integer"},
      {[](json& j) { j.erase("architectures"); }, "missing key 'architectures'"},
      {[](json& j) { j["architectures"] = {"GPT2LMHeadModel"}; }, "'GPT2LMHeadModel' is not supported"},
      {[](json& j) { j["rms_norm_eps"] = "small"; }, "'rms_norm_eps' must be a number"},
      {[](json& j) { j["rope_theta"] = -1; }, "'rope_theta' = -1 must be positive"},
      {[](json& j) { j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4}}; }, "'yarn' is not supported"},
      {[](json& j) { j["rope_scaling"] = {{"type", "llama3"}, {"factor", 4}}; }, "low_freq_factor"},
      {[](json& j) { j["hidden_act"] = "gelu"; }, "hidden_act"},
      {[](json& j) { j["attention_bias"] = true; }, "attention_bias"},
      {[](json& j) { j["num_key_value_heads"] = 3; }, "not a multiple of num_key_value_heads"},
      {[](json& j) { j["tie_word_embeddings"] = "yes"; }, "'tie_word_embeddings' must be true or false"},
      {[](json& j) { j = json::array(); }, "not an object"},
  };
  for (const auto& k : cases) {
    json cfg = config_json(c);
    k.edit(cfg);
    write_json(d.file("config.json"), cfg);
    const std::string err = error_of([&] { io::load_hf_directory(d.path.string()); });
    EXPECT_NE(err.find(k.want), std::string::npos) << err;
    EXPECT_NE(err.find("config.json"), std::string::npos) << err;
  }
  testutil::write_file(d.file("config.json"), "{\"hidden_size\": ");
  EXPECT_NE(error_of([&] { io::load_hf_directory(d.path.string()); }).find("not valid JSON"), std::string::npos);
}

TEST(HfDirectory, BrokenWeightsAndFilesAreErrors) {
  std::mt19937 g(std::random_device{}());
  Cfg c;
  const auto w = random_weights(c, g);
  const auto expect_err = [](const testutil::TempDir& d, const std::string& want) {
    const std::string err = error_of([&] { io::load_hf_directory(d.path.string()); });
    EXPECT_NE(err.find(want), std::string::npos) << err;
  };
  {  // an unknown tensor
    testutil::TempDir d;
    auto more = w;
    more.push_back(w[1]);
    more.back().hf = "model.layers.0.mlp.extra.weight";
    write_dir(d, c, more);
    expect_err(d, "unknown tensor 'model.layers.0.mlp.extra.weight'");
  }
  {  // a missing tensor
    testutil::TempDir d;
    auto fewer = w;
    fewer.erase(fewer.begin() + 5);
    write_dir(d, c, fewer);
    expect_err(d, "missing tensor '" + w[5].hf + "'");
  }
  {  // a layer beyond num_hidden_layers
    testutil::TempDir d;
    auto more = w;
    more.push_back(w[3]);
    more.back().hf = "model.layers.7.input_layernorm.weight";
    write_dir(d, c, more);
    expect_err(d, "layer 7");
  }
  {  // wrong shape
    testutil::TempDir d;
    auto bad = w;
    bad[0].shape = {c.hidden, c.vocab};
    write_dir(d, c, bad);
    expect_err(d, "model.embed_tokens.weight' has shape");
  }
  {  // integer weights
    testutil::TempDir d;
    auto bad = w;
    bad[1].dtype = DType::i8;
    bad[1].bytes.resize(static_cast<size_t>(c.hidden));
    write_dir(d, c, bad);
    expect_err(d, "expected F32, F16 or BF16");
  }
  {  // no weights, no tokenizer, no config, not a directory
    testutil::TempDir d;
    write_dir(d, c, w);
    std::filesystem::remove(d.file("tokenizer.json"));
    expect_err(d, "no tokenizer.json");
    std::filesystem::remove(d.file("model.safetensors"));
    expect_err(d, "neither model.safetensors nor model.safetensors.index.json");
    std::filesystem::remove(d.file("config.json"));
    expect_err(d, "no config.json");
    EXPECT_THROW(io::load_hf_directory(d.file("nothing")), Error);
  }
  {  // index naming files outside the directory, or tensors that are not there
    testutil::TempDir d;
    write_dir(d, c, w, 2);
    json idx = json::parse(testutil::read_file(d.file("model.safetensors.index.json")));
    idx["weight_map"]["model.norm.weight"] = "../model-00001-of-00002.safetensors";
    write_json(d.file("model.safetensors.index.json"), idx);
    expect_err(d, "not a file in the same directory");
    idx["weight_map"]["model.norm.weight"] = "model-00001-of-00002.safetensors";
    idx["weight_map"]["model.extra"] = "model-00001-of-00002.safetensors";
    write_json(d.file("model.safetensors.index.json"), idx);
    expect_err(d, "'model.extra' listed in model.safetensors.index.json");
    idx["weight_map"].erase("model.extra");
    idx["weight_map"]["model.norm.weight"] = "model-00009-of-00009.safetensors";
    write_json(d.file("model.safetensors.index.json"), idx);
    expect_err(d, "cannot open");
    write_json(d.file("model.safetensors.index.json"), {{"weight_map", 3}});
    expect_err(d, "weight_map");
  }
}
