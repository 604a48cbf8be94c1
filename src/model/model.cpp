// Loading a Llama-family decoder into float32 and its forward pass.
//
// Per block:  h = x + W_o . attn(rope(W_q n1), rope(W_k n1), W_v n1),  n1 = rmsnorm(x) * attn_norm
//             x' = h + W_down . (silu(W_gate n2) * W_up n2),             n2 = rmsnorm(h) * ffn_norm
// then logits = W_out . (rmsnorm(x) * output_norm).
#include "micromix/model.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "cpu/kernels.hpp"
#include "micromix/error.hpp"
#include "model/attention.hpp"
#include "model/rope.hpp"

namespace micromix {
namespace {

std::string shape_str(const std::vector<int64_t>& s) { return fmt::format("({})", fmt::join(s, ", ")); }

std::vector<float> load_float(const TensorSource& ts, const std::string& name, const std::vector<int64_t>& shape) {
  const TensorView& t = ts.get(name);
  MM_CHECK(t.shape == shape, "tensor {} has shape {}, expected {}", name, shape_str(t.shape), shape_str(shape));
  try {
    return to_float(t);
  } catch (const Error& e) {
    fail("tensor {}: {}", name, e.what());
  }
}

void check_config(const ModelConfig& c) {
  MM_CHECK(c.n_layers > 0 && c.hidden > 0 && c.ffn > 0 && c.vocab > 0,
           "model config: n_layers {}, hidden {}, ffn {}, vocab {} must be positive", c.n_layers, c.hidden, c.ffn,
           c.vocab);
  MM_CHECK(c.n_heads > 0 && c.n_kv_heads > 0 && c.n_heads % c.n_kv_heads == 0,
           "model config: n_heads {} is not a positive multiple of n_kv_heads {}", c.n_heads, c.n_kv_heads);
  MM_CHECK(c.head_dim > 0 && c.head_dim % 2 == 0, "model config: head_dim {} is not a positive even number",
           c.head_dim);
  MM_CHECK(c.rms_eps > 0.0f, "model config: rms_eps {} must be positive", c.rms_eps);
  MM_CHECK(c.max_ctx > 0, "model config: max_ctx {} must be positive", c.max_ctx);
}

// Adds y into x elementwise over n values (the residual stream).
void add_inplace(float* x, const float* y, int64_t n) {
#pragma omp parallel for simd if (n >= (1 << 16)) schedule(static)
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

}  // namespace

const char* linear_input_name(LinearInput which) {
  switch (which) {
    case LinearInput::attn_qkv: return "attn_qkv";
    case LinearInput::attn_output: return "attn_output";
    case LinearInput::ffn_gate_up: return "ffn_gate_up";
    case LinearInput::ffn_down: return "ffn_down";
  }
  return "?";
}

Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
Model::~Model() = default;

Model Model::load(const ModelSource& src, const LinearFactory& make_linear) {
  MM_CHECK(src.tensors != nullptr, "model source {} has no tensors", src.path);
  // Pre-quantized sources (micromix checkpoints) can only build their layers themselves.
  return load(src.config, *src.tensors, src.linear_factory ? src.linear_factory : make_linear);
}

Model Model::load(const ModelConfig& config, const TensorSource& ts, const LinearFactory& make_linear) {
  check_config(config);
  Model m;
  m.cfg_ = config;
  const ModelConfig& c = m.cfg_;
  const int64_t H = c.hidden, F = c.ffn, V = c.vocab, D = c.head_dim;
  const int64_t q_out = int64_t{c.n_heads} * D, kv_out = int64_t{c.n_kv_heads} * D;

  m.token_embd_ = load_float(ts, "token_embd.weight", {V, H});
  m.output_norm_ = load_float(ts, "output_norm.weight", {H});

  auto linear = [&](int layer, const std::string& name, int64_t out, int64_t in, bool want_bias) {
    LinearSpec spec;
    spec.name = name;
    spec.layer = layer;
    spec.out = out;
    spec.in = in;
    // Absent weights are left empty for factories that build the layer from their own data
    // (quantized checkpoints); the dense factory then reports the missing tensor.
    if (ts.find(name)) spec.weight = load_float(ts, name, {out, in});
    const std::string bias_name = name.substr(0, name.size() - std::string(".weight").size()) + ".bias";
    if (want_bias || ts.find(bias_name)) spec.bias = load_float(ts, bias_name, {out});
    auto lin = make_linear(std::move(spec));
    MM_CHECK(lin && lin->out_features() == out && lin->in_features() == in,
             "linear factory returned a bad layer for {} (expected ({}, {}))", name, out, in);
    return lin;
  };

  m.layers_.resize(static_cast<size_t>(c.n_layers));
  for (int l = 0; l < c.n_layers; ++l) {
    Layer& L = m.layers_[static_cast<size_t>(l)];
    const std::string p = fmt::format("blk.{}.", l);
    L.attn_norm = load_float(ts, p + "attn_norm.weight", {H});
    L.ffn_norm = load_float(ts, p + "ffn_norm.weight", {H});
    L.q = linear(l, p + "attn_q.weight", q_out, H, c.qkv_bias);
    L.k = linear(l, p + "attn_k.weight", kv_out, H, c.qkv_bias);
    L.v = linear(l, p + "attn_v.weight", kv_out, H, c.qkv_bias);
    L.o = linear(l, p + "attn_output.weight", H, q_out, false);
    L.gate = linear(l, p + "ffn_gate.weight", F, H, false);
    L.up = linear(l, p + "ffn_up.weight", F, H, false);
    L.down = linear(l, p + "ffn_down.weight", H, F, false);
  }

  // lm_head: output.weight, or the embeddings when tied (or when the file has no output.weight).
  LinearSpec head;
  head.name = "output.weight";
  head.out = V;
  head.in = H;
  head.weight = ts.find("output.weight") ? load_float(ts, "output.weight", {V, H}) : m.token_embd_;
  m.lm_head_ = make_linear(std::move(head));
  MM_CHECK(m.lm_head_ && m.lm_head_->out_features() == V && m.lm_head_->in_features() == H,
           "linear factory returned a bad lm_head");

  m.rope_inv_freq_ = rope_inv_freq(c.head_dim, c.rope_theta, c.rope_scaling);
  return m;
}

KvCache Model::new_cache(int64_t capacity) const {
  return KvCache(cfg_.n_layers, capacity > 0 ? capacity : cfg_.max_ctx, cfg_.n_kv_heads, cfg_.head_dim);
}

void Model::forward(std::span<const int32_t> tokens, KvCache& cache, std::vector<float>& logits,
                    int64_t n_logits) const {
  const ModelConfig& c = cfg_;
  const auto n = static_cast<int64_t>(tokens.size());
  const int64_t H = c.hidden, F = c.ffn, V = c.vocab, D = c.head_dim;
  const int64_t q_dim = int64_t{c.n_heads} * D, kv_dim = int64_t{c.n_kv_heads} * D;
  const int64_t pos0 = cache.length();
  MM_CHECK(cache.n_layers() == c.n_layers && cache.n_kv_heads() == c.n_kv_heads && cache.head_dim() == D,
           "KV cache shape does not match the model");
  MM_CHECK(pos0 + n <= cache.capacity(), "context full: {} cached + {} new tokens > capacity {}", pos0, n,
           cache.capacity());
  for (int64_t t = 0; t < n; ++t)
    MM_CHECK(tokens[static_cast<size_t>(t)] >= 0 && tokens[static_cast<size_t>(t)] < V,
             "token id {} at index {} is outside the vocabulary (0 .. {})", tokens[static_cast<size_t>(t)], t, V - 1);
  if (n_logits < 0 || n_logits > n) n_logits = n;
  logits.resize(static_cast<size_t>(n_logits * V));
  if (n == 0) return;

  // Activations, each (n, features).
  std::vector<float> x(static_cast<size_t>(n * H)), xn(x.size()), q(static_cast<size_t>(n * q_dim)),
      att(q.size()), gate(static_cast<size_t>(n * F)), up(gate.size());
  for (int64_t t = 0; t < n; ++t)
    std::memcpy(x.data() + t * H, token_embd_.data() + int64_t{tokens[static_cast<size_t>(t)]} * H,
                sizeof(float) * static_cast<size_t>(H));
  const RopeTable rope = rope_table(rope_inv_freq_, pos0, n);
  const AttentionShape shape{c.n_heads, c.n_kv_heads, D};

  for (int l = 0; l < c.n_layers; ++l) {
    const Layer& L = layers_[static_cast<size_t>(l)];
    // attention
    cpu::rmsnorm(x.data(), L.attn_norm.data(), n, H, c.rms_eps, xn.data());
    observe(l, LinearInput::attn_qkv, xn.data(), n, H);
    L.q->forward(xn.data(), n, q.data());
    apply_rope(q.data(), n, c.n_heads, D, q_dim, rope);
    float* k_rows = cache.k(l) + pos0 * kv_dim;  // new positions go straight into the cache
    L.k->forward(xn.data(), n, k_rows);
    apply_rope(k_rows, n, c.n_kv_heads, D, kv_dim, rope);
    L.v->forward(xn.data(), n, cache.v(l) + pos0 * kv_dim);
    attention(q.data(), n, pos0, cache.k(l), cache.v(l), shape, att.data());
    observe(l, LinearInput::attn_output, att.data(), n, q_dim);
    L.o->forward(att.data(), n, xn.data());
    add_inplace(x.data(), xn.data(), n * H);
    // MLP
    cpu::rmsnorm(x.data(), L.ffn_norm.data(), n, H, c.rms_eps, xn.data());
    observe(l, LinearInput::ffn_gate_up, xn.data(), n, H);
    L.gate->forward(xn.data(), n, gate.data());
    L.up->forward(xn.data(), n, up.data());
    cpu::swiglu(gate.data(), up.data(), n * F, gate.data());
    observe(l, LinearInput::ffn_down, gate.data(), n, F);
    L.down->forward(gate.data(), n, xn.data());
    add_inplace(x.data(), xn.data(), n * H);
  }
  cache.length_ = pos0 + n;

  if (n_logits == 0) return;
  const float* last = x.data() + (n - n_logits) * H;
  cpu::rmsnorm(last, output_norm_.data(), n_logits, H, c.rms_eps, xn.data());
  lm_head_->forward(xn.data(), n_logits, logits.data());
}

}  // namespace micromix
