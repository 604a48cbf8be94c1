// The CPU forward pass against an independent double-precision reference, prefill vs decode,
// causality, hooks and hostile input.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "micromix/error.hpp"
#include "micromix/model.hpp"
#include "model/test_forward_reference.hpp"

using micromix::Model;
using testmodel::random_tokens;

namespace {

// max |a - b| / max |b|
double rel_err(const std::vector<float>& a, const std::vector<double>& b) {
  double d = 0, m = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    d = std::max(d, std::abs(a[i] - b[i]));
    m = std::max(m, std::abs(b[i]));
  }
  return d / m;
}
double rel_err(const std::vector<float>& a, const std::vector<float>& b) {
  return rel_err(a, std::vector<double>(b.begin(), b.end()));
}

micromix::ModelConfig qwen_like_config() {
  auto c = testmodel::tiny_config();
  c.arch = "qwen2";
  c.qkv_bias = true;
  c.tied_embeddings = false;
  c.n_heads = 6;
  c.n_kv_heads = 2;
  c.head_dim = 16;  // q width 96 != hidden 64
  c.rope_theta = 1e6f;
  c.rms_eps = 1e-6f;
  // llama3 scaling with a short original context so all three frequency bands occur.
  c.rope_scaling.type = "llama3";
  c.rope_scaling.factor = 8.0f;
  c.rope_scaling.low_freq_factor = 1.0f;
  c.rope_scaling.high_freq_factor = 4.0f;
  c.rope_scaling.original_max_position = 64;
  return c;
}

void check_against_reference(const micromix::ModelConfig& c, int n_tokens) {
  std::mt19937_64 g(std::random_device{}());
  const auto src = testmodel::random_model(c, g());
  const Model m = Model::load(c, src);
  const auto tokens = random_tokens(n_tokens, c.vocab, g);
  auto cache = m.new_cache();
  std::vector<float> logits;
  m.forward(tokens, cache, logits);
  ASSERT_EQ(logits.size(), static_cast<size_t>(n_tokens * c.vocab));
  EXPECT_EQ(cache.length(), n_tokens);
  const auto ref = testmodel::reference_forward(c, src, tokens);
  // float32 accumulation over a few hundred terms per layer: ~1e-6 relative per op, a few layers.
  EXPECT_LT(rel_err(logits, ref), 2e-5) << "n_tokens " << n_tokens;
}

}  // namespace

TEST(ForwardCpu, MatchesReferenceLlamaTied) {
  for (int n : {1, 7, 40, 70}) check_against_reference(testmodel::tiny_config(), n);
}

TEST(ForwardCpu, MatchesReferenceQwenBiasUntiedLlama3Rope) {
  for (int n : {3, 45, 100}) check_against_reference(qwen_like_config(), n);
}

TEST(ForwardCpu, MultiQueryAndFullHeads) {
  auto c = testmodel::tiny_config();
  c.n_kv_heads = 1;
  check_against_reference(c, 33);
  c.n_kv_heads = 4;
  check_against_reference(c, 33);
}

TEST(ForwardCpu, PrefillEqualsSuccessiveDecodesAndChunks) {
  for (const auto& c : {testmodel::tiny_config(), qwen_like_config()}) {
    std::mt19937_64 g(std::random_device{}());
    const auto src = testmodel::random_model(c, g());
    const Model m = Model::load(c, src);
    const int n = 77;
    const auto tokens = random_tokens(n, c.vocab, g);
    auto cache = m.new_cache(n);
    std::vector<float> prefill, step, all;
    m.forward(tokens, cache, prefill);
    // One token at a time.
    cache.clear();
    for (int t = 0; t < n; ++t) {
      m.forward(std::span(tokens).subspan(t, 1), cache, step, 1);
      all.insert(all.end(), step.begin(), step.end());
    }
    EXPECT_EQ(cache.length(), n);
    EXPECT_LT(rel_err(all, prefill), 1e-5);
    // Uneven chunks, last-row logits only.
    cache.clear();
    int pos = 0;
    for (int len : {5, 40, 1, 31}) {
      m.forward(std::span(tokens).subspan(pos, len), cache, step, 1);
      pos += len;
      ASSERT_EQ(step.size(), static_cast<size_t>(c.vocab));
      const std::vector<float> want(prefill.begin() + (pos - 1) * c.vocab, prefill.begin() + pos * c.vocab);
      EXPECT_LT(rel_err(step, want), 1e-5) << "chunk ending at " << pos;
    }
    // Last-k logits equal the tail of all logits.
    cache.clear();
    m.forward(tokens, cache, step, 10);
    const std::vector<float> tail(prefill.end() - 10 * c.vocab, prefill.end());
    EXPECT_LT(rel_err(step, tail), 1e-6);
  }
}

TEST(ForwardCpu, CausalLaterTokensDoNotChangeEarlierLogits) {
  const auto c = testmodel::tiny_config();
  std::mt19937_64 g(std::random_device{}());
  const auto src = testmodel::random_model(c, g());
  const Model m = Model::load(c, src);
  const int n = 50;
  auto tokens = random_tokens(n, c.vocab, g);
  auto cache = m.new_cache(n);
  std::vector<float> a, b;
  m.forward(tokens, cache, a);
  const int j = std::uniform_int_distribution<int>(1, n - 1)(g);
  tokens[static_cast<size_t>(j)] = (tokens[static_cast<size_t>(j)] + 1 + static_cast<int>(g() % (c.vocab - 1))) % c.vocab;
  cache.clear();
  m.forward(tokens, cache, b);
  const std::vector<float> a_before(a.begin(), a.begin() + j * c.vocab), b_before(b.begin(), b.begin() + j * c.vocab);
  EXPECT_LT(rel_err(b_before, a_before), 1e-6) << "changed token " << j;
  const std::vector<float> a_at(a.begin() + j * c.vocab, a.begin() + (j + 1) * c.vocab),
      b_at(b.begin() + j * c.vocab, b.begin() + (j + 1) * c.vocab);
  EXPECT_GT(rel_err(b_at, a_at), 1e-3) << "the changed position must see its new token";
}

TEST(ForwardCpu, FactorySeesEveryProjectionAndObserverEveryInput) {
  const auto c = qwen_like_config();
  std::mt19937_64 g(std::random_device{}());
  const auto src = testmodel::random_model(c, g());
  std::set<std::string> names;
  int with_bias = 0;
  Model m = Model::load(c, src, [&](micromix::LinearSpec&& s) {
    EXPECT_EQ(s.weight.size(), static_cast<size_t>(s.out * s.in)) << s.name;
    names.insert(s.name);
    with_bias += !s.bias.empty();
    return micromix::make_dense_linear(std::move(s));
  });
  EXPECT_EQ(names.size(), static_cast<size_t>(7 * c.n_layers + 1));
  EXPECT_TRUE(names.count("output.weight"));
  EXPECT_TRUE(names.count("blk.1.ffn_down.weight"));
  EXPECT_EQ(with_bias, 3 * c.n_layers);

  const int n = 9;
  const auto tokens = random_tokens(n, c.vocab, g);
  std::vector<std::tuple<int, micromix::LinearInput, int64_t, int64_t>> seen;
  std::vector<float> first_input;
  m.set_linear_input_observer([&](int layer, micromix::LinearInput w, const float* x, int64_t nt, int64_t f) {
    seen.emplace_back(layer, w, nt, f);
    if (layer == 0 && w == micromix::LinearInput::attn_qkv) first_input.assign(x, x + nt * f);
  });
  auto cache = m.new_cache();
  std::vector<float> logits;
  m.forward(tokens, cache, logits);
  ASSERT_EQ(seen.size(), static_cast<size_t>(4 * c.n_layers));
  const int64_t q_dim = int64_t{c.n_heads} * c.head_dim;
  for (int l = 0; l < c.n_layers; ++l) {
    EXPECT_EQ(seen[4 * l + 0], std::make_tuple(l, micromix::LinearInput::attn_qkv, int64_t{n}, int64_t{c.hidden}));
    EXPECT_EQ(seen[4 * l + 1], std::make_tuple(l, micromix::LinearInput::attn_output, int64_t{n}, q_dim));
    EXPECT_EQ(seen[4 * l + 2], std::make_tuple(l, micromix::LinearInput::ffn_gate_up, int64_t{n}, int64_t{c.hidden}));
    EXPECT_EQ(seen[4 * l + 3], std::make_tuple(l, micromix::LinearInput::ffn_down, int64_t{n}, int64_t{c.ffn}));
  }
  // Layer 0's q/k/v input is rmsnorm(embedding) * attn_norm.
  const auto& emb = src.values("token_embd.weight");
  const auto& w = src.values("blk.0.attn_norm.weight");
  for (int t = 0; t < n; ++t) {
    double ss = 0;
    for (int i = 0; i < c.hidden; ++i) ss += std::pow(emb[tokens[t] * c.hidden + i], 2);
    const double inv = 1 / std::sqrt(ss / c.hidden + c.rms_eps);
    for (int i = 0; i < c.hidden; ++i)
      EXPECT_NEAR(first_input[t * c.hidden + i], emb[tokens[t] * c.hidden + i] * inv * w[i], 1e-5);
  }
}

TEST(ForwardCpu, HostileInputThrowsClearErrors) {
  const auto c = testmodel::tiny_config();
  std::mt19937_64 g(std::random_device{}());
  auto src = testmodel::random_model(c, g());
  const Model m = Model::load(c, src);
  auto cache = m.new_cache(8);
  std::vector<float> logits;
  auto expect_error = [](auto&& f, const std::string& needle) {
    try {
      f();
      ADD_FAILURE() << "no error; expected one containing '" << needle << "'";
    } catch (const micromix::Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  const std::vector<int32_t> bad_id{1, 2, c.vocab}, neg_id{-1};
  expect_error([&] { m.forward(bad_id, cache, logits); }, "outside the vocabulary");
  expect_error([&] { m.forward(neg_id, cache, logits); }, "outside the vocabulary");
  EXPECT_EQ(cache.length(), 0);
  const auto nine = random_tokens(9, c.vocab, g);
  expect_error([&] { m.forward(nine, cache, logits); }, "context full");
  EXPECT_EQ(cache.length(), 0);
  expect_error([&] { cache.truncate(1); }, "cannot truncate");

  // Missing tensor, wrong shape, inconsistent config.
  auto missing = testmodel::random_model(c, 1);
  missing.remove("blk.1.ffn_up.weight");
  expect_error([&] { (void)Model::load(c, missing); }, "blk.1.ffn_up.weight");
  auto wrong = testmodel::random_model(c, 2);
  wrong.add("blk.0.attn_k.weight", {16, 64}, std::vector<float>(16 * 64));
  expect_error([&] { (void)Model::load(c, wrong); }, "blk.0.attn_k.weight has shape (16, 64)");
  auto bad_cfg = c;
  bad_cfg.n_kv_heads = 3;
  expect_error([&] { (void)Model::load(bad_cfg, src); }, "n_kv_heads");
  bad_cfg = c;
  bad_cfg.rope_scaling.type = "yarn";
  expect_error([&] { (void)Model::load(bad_cfg, src); }, "yarn");
  bad_cfg = c;
  bad_cfg.qkv_bias = true;  // config asks for biases the file lacks
  expect_error([&] { (void)Model::load(bad_cfg, src); }, "attn_q.bias");
}
