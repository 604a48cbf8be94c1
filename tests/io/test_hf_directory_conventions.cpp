// Hugging Face conventions: tensor-name mapping both ways, config.json written then read back, and
// tokenizer.json written from a spec then read back by the tokenizer's own loader.
#include <gtest/gtest.h>

#include <random>

#include <nlohmann/json.hpp>

#include "io/hf_config.hpp"
#include "micromix/error.hpp"
#include "micromix/tokenizer.hpp"

using namespace micromix;
using json = nlohmann::json;

TEST(HfConventions, TensorNamesMapBothWays) {
  const std::pair<const char*, const char*> pairs[] = {
      {"model.embed_tokens.weight", "token_embd.weight"},
      {"model.norm.weight", "output_norm.weight"},
      {"lm_head.weight", "output.weight"},
      {"model.layers.0.input_layernorm.weight", "blk.0.attn_norm.weight"},
      {"model.layers.12.self_attn.q_proj.weight", "blk.12.attn_q.weight"},
      {"model.layers.3.self_attn.q_proj.bias", "blk.3.attn_q.bias"},
      {"model.layers.3.self_attn.k_proj.weight", "blk.3.attn_k.weight"},
      {"model.layers.3.self_attn.k_proj.bias", "blk.3.attn_k.bias"},
      {"model.layers.3.self_attn.v_proj.weight", "blk.3.attn_v.weight"},
      {"model.layers.3.self_attn.v_proj.bias", "blk.3.attn_v.bias"},
      {"model.layers.3.self_attn.o_proj.weight", "blk.3.attn_output.weight"},
      {"model.layers.31.post_attention_layernorm.weight", "blk.31.ffn_norm.weight"},
      {"model.layers.31.mlp.gate_proj.weight", "blk.31.ffn_gate.weight"},
      {"model.layers.31.mlp.up_proj.weight", "blk.31.ffn_up.weight"},
      {"model.layers.100.mlp.down_proj.weight", "blk.100.ffn_down.weight"},
  };
  for (auto [hf, canonical] : pairs) {
    EXPECT_EQ(io::canonical_from_hf(hf).value_or("-"), canonical);
    EXPECT_EQ(io::hf_from_canonical(canonical).value_or("-"), hf);
  }
  for (const char* bad : {"model.layers.x.mlp.up_proj.weight", "model.layers.01.mlp.up_proj.weight",
                          "model.layers..mlp.up_proj.weight", "model.layers.1.mlp.up_proj", "model.layers.1",
                          "model.layers.", "", "lm_head.bias", "model.layers.1.self_attn.o_proj.bias",
                          "model.layers.99999999999.mlp.up_proj.weight", "transformer.wte.weight"})
    EXPECT_FALSE(io::canonical_from_hf(bad)) << bad;
  EXPECT_FALSE(io::hf_from_canonical("rope_freqs.weight"));
  EXPECT_FALSE(io::hf_from_canonical("blk.-1.attn_q.weight"));
}

TEST(HfConventions, ConfigJsonRoundTrips) {
  std::mt19937 g(std::random_device{}());
  for (const char* arch : {"llama", "qwen2", "mistral"})
    for (int trial = 0; trial < 4; ++trial) {
      ModelConfig c;
      c.arch = arch;
      c.name = "test-model";
      c.n_layers = 1 + static_cast<int>(g() % 40);
      c.n_kv_heads = 1 + static_cast<int>(g() % 8);
      c.n_heads = c.n_kv_heads * (1 + static_cast<int>(g() % 4));
      c.head_dim = 2 * (1 + static_cast<int>(g() % 64));
      c.hidden = c.n_heads * c.head_dim;
      c.ffn = 1 + static_cast<int>(g() % 10000);
      c.vocab = 1 + static_cast<int>(g() % 200000);
      c.max_ctx = 1 + static_cast<int>(g() % 131072);
      c.rope_theta = std::uniform_real_distribution<float>(1.0f, 1e6f)(g);
      c.rms_eps = std::uniform_real_distribution<float>(1e-7f, 1e-4f)(g);
      c.tied_embeddings = g() % 2;
      c.qkv_bias = c.arch == "qwen2";
      if (c.arch == "llama" && g() % 2) {
        c.rope_scaling.type = "llama3";
        c.rope_scaling.factor = 8.0f;
        c.rope_scaling.low_freq_factor = 1.0f;
        c.rope_scaling.high_freq_factor = 4.0f;
        c.rope_scaling.original_max_position = 8192;
      }
      TokenizerSpec tok;
      tok.tokens.assign(10, "x");
      tok.bos_id = 1;
      tok.eos_id = 2;
      const json j = io::hf_config_to_json(c, tok, "float32");
      EXPECT_EQ(j["bos_token_id"], 1);
      EXPECT_EQ(j["eos_token_id"], 2);
      // Through text, as transformers would read it.
      const ModelConfig r = io::hf_config_from_json(json::parse(j.dump()), "config.json");
      EXPECT_EQ(r.arch, c.arch);
      EXPECT_EQ(r.name, c.name);
      EXPECT_EQ(r.n_layers, c.n_layers);
      EXPECT_EQ(r.hidden, c.hidden);
      EXPECT_EQ(r.ffn, c.ffn);
      EXPECT_EQ(r.n_heads, c.n_heads);
      EXPECT_EQ(r.n_kv_heads, c.n_kv_heads);
      EXPECT_EQ(r.head_dim, c.head_dim);
      EXPECT_EQ(r.vocab, c.vocab);
      EXPECT_EQ(r.max_ctx, c.max_ctx);
      EXPECT_EQ(r.rope_theta, c.rope_theta);  // exact: shortest decimal that reads back as the float
      EXPECT_EQ(r.rms_eps, c.rms_eps);
      EXPECT_EQ(r.tied_embeddings, c.tied_embeddings);
      EXPECT_EQ(r.qkv_bias, c.qkv_bias);
      EXPECT_EQ(r.rope_scaling.type, c.rope_scaling.type);
      EXPECT_EQ(r.rope_scaling.factor, c.rope_scaling.factor);
      EXPECT_EQ(r.rope_scaling.original_max_position, c.rope_scaling.original_max_position);
    }
  ModelConfig odd;
  odd.arch = "gpt2";
  EXPECT_THROW(io::hf_config_to_json(odd, {}, "float32"), Error);
  odd.arch = "llama";
  odd.qkv_bias = true;  // transformers' Llama attention_bias would also add an o_proj bias
  EXPECT_THROW(io::hf_config_to_json(odd, {}, "float32"), Error);
  EXPECT_EQ(io::hf_config_to_json(ModelConfig{}, {}, "float32")["rms_norm_eps"].dump(), "1e-05");
}

namespace {

// A random byte-level vocabulary: single characters, then merged pairs, control tokens at the end.
TokenizerSpec random_spec(std::mt19937& g, const std::string& pre) {
  TokenizerSpec s;
  s.pre = pre;
  const std::string letters = "abcdefghij";
  for (char ch : letters) s.tokens.emplace_back(1, ch);
  for (int i = 0; i < 20; ++i) {
    const std::string& a = s.tokens[g() % s.tokens.size()];
    const std::string& b = s.tokens[g() % s.tokens.size()];
    const std::string ab = a + b;
    if (std::find(s.tokens.begin(), s.tokens.end(), ab) != s.tokens.end()) continue;
    s.merges.push_back(a + " " + b);
    s.tokens.push_back(ab);
  }
  s.token_types.assign(s.tokens.size(), 1);
  for (const char* special : {"<|bos|>", "<|eos|>", "<tool>"}) {
    s.tokens.emplace_back(special);
    s.token_types.push_back(std::string(special) == "<tool>" ? 4 : 3);
  }
  s.bos_id = static_cast<int32_t>(s.tokens.size()) - 3;
  s.eos_id = s.bos_id + 1;
  s.add_bos = g() % 2;
  return s;
}

}  // namespace

TEST(HfConventions, TokenizerJsonRoundTripsThroughTheTokenizerLoader) {
  std::mt19937 g(std::random_device{}());
  for (const char* pre : {"gpt2", "smollm", "llama3", "qwen2", "tekken", "default", "llama-bpe"})
    for (int trial = 0; trial < 3; ++trial) {
      const TokenizerSpec s = random_spec(g, pre);
      const json j = io::hf_tokenizer_json(s);
      const TokenizerSpec r = tokenizer_spec_from_json_text(j.dump());
      SCOPED_TRACE(pre);
      EXPECT_EQ(r.tokens, s.tokens);
      EXPECT_EQ(r.token_types, s.token_types);
      EXPECT_EQ(r.merges, s.merges);
      const std::string want_pre = std::string(pre) == "default" ? "gpt2" : std::string(pre) == "llama-bpe" ? "llama3" : pre;
      EXPECT_EQ(r.pre, want_pre);
      EXPECT_EQ(r.add_bos, s.add_bos);
      if (s.add_bos) {
        EXPECT_EQ(r.bos_id, s.bos_id);
      }
      const json tc = io::hf_tokenizer_config_json(s, ModelConfig{});
      EXPECT_EQ(tc["bos_token"], "<|bos|>");
      EXPECT_EQ(tc["eos_token"], "<|eos|>");
      EXPECT_EQ(tc["add_bos_token"], s.add_bos);
    }
  TokenizerSpec dup = random_spec(g, "gpt2");
  dup.tokens[1] = dup.tokens[0];
  EXPECT_THROW(io::hf_tokenizer_json(dup), Error);
  TokenizerSpec unknown_pre = random_spec(g, "gpt2");
  unknown_pre.pre = "no-such-pre";
  EXPECT_THROW(io::hf_tokenizer_json(unknown_pre), Error);
  EXPECT_THROW(io::hf_tokenizer_json(TokenizerSpec{}), Error);
}
