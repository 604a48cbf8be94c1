// Test helpers: a random Llama-family model as a TensorSource, and an independent double-precision
// reference forward pass written with straight loops (shares no code with the engine).
#pragma once
#include <cmath>
#include <map>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "micromix/model_source.hpp"
#include "micromix/tensor.hpp"

namespace testmodel {

using micromix::ModelConfig;

// float32 tensors held in memory.
class MemorySource final : public micromix::TensorSource {
 public:
  MemorySource() = default;
  MemorySource(const MemorySource&) = delete;  // views point into this object's vectors
  MemorySource(MemorySource&&) = default;
  void add(const std::string& name, std::vector<int64_t> shape, std::vector<float> values) {
    Entry& e = entries_[name];
    e.values = std::move(values);
    e.view.name = name;
    e.view.dtype = micromix::DType::f32;
    e.view.shape = std::move(shape);
    e.view.data = {reinterpret_cast<const uint8_t*>(e.values.data()), e.values.size() * sizeof(float)};
  }
  void remove(const std::string& name) { entries_.erase(name); }
  const std::vector<float>& values(const std::string& name) const { return entries_.at(name).values; }
  bool has(const std::string& name) const { return entries_.count(name) != 0; }
  std::vector<std::string> names() const override {
    std::vector<std::string> n;
    for (const auto& [k, _] : entries_) n.push_back(k);
    return n;
  }
  const micromix::TensorView* find(std::string_view name) const override {
    auto it = entries_.find(std::string(name));
    return it == entries_.end() ? nullptr : &it->second.view;
  }

 private:
  struct Entry {
    std::vector<float> values;
    micromix::TensorView view;
  };
  std::map<std::string, Entry> entries_;
};

inline ModelConfig tiny_config() {
  ModelConfig c;
  c.arch = "llama";
  c.n_layers = 2;
  c.hidden = 64;
  c.ffn = 96;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = 16;
  c.vocab = 97;
  c.max_ctx = 128;
  c.rope_theta = 10000.0f;
  c.rms_eps = 1e-5f;
  c.tied_embeddings = true;
  return c;
}

// Random weights scaled like a trained model's (unit-ish activations), norms around 1.
inline MemorySource random_model(const ModelConfig& c, uint64_t seed) {
  std::mt19937_64 g(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  auto mat = [&](int64_t out, int64_t in, float scale) {
    std::vector<float> v(static_cast<size_t>(out * in));
    for (auto& x : v) x = nd(g) * scale / std::sqrt(static_cast<float>(in));
    return v;
  };
  auto norm = [&](int64_t n) {
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) x = 1.0f + 0.2f * nd(g);
    return v;
  };
  MemorySource s;
  const int64_t H = c.hidden, F = c.ffn, V = c.vocab, q = int64_t{c.n_heads} * c.head_dim,
                kv = int64_t{c.n_kv_heads} * c.head_dim;
  s.add("token_embd.weight", {V, H}, mat(V, H, std::sqrt(static_cast<float>(H))));
  s.add("output_norm.weight", {H}, norm(H));
  if (!c.tied_embeddings) s.add("output.weight", {V, H}, mat(V, H, 2.0f));
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = fmt::format("blk.{}.", l);
    s.add(p + "attn_norm.weight", {H}, norm(H));
    s.add(p + "ffn_norm.weight", {H}, norm(H));
    s.add(p + "attn_q.weight", {q, H}, mat(q, H, 2.0f));
    s.add(p + "attn_k.weight", {kv, H}, mat(kv, H, 2.0f));
    s.add(p + "attn_v.weight", {kv, H}, mat(kv, H, 1.0f));
    s.add(p + "attn_output.weight", {H, q}, mat(H, q, 1.0f));
    s.add(p + "ffn_gate.weight", {F, H}, mat(F, H, 1.0f));
    s.add(p + "ffn_up.weight", {F, H}, mat(F, H, 1.0f));
    s.add(p + "ffn_down.weight", {H, F}, mat(H, F, 1.0f));
    if (c.qkv_bias) {
      s.add(p + "attn_q.bias", {q}, mat(1, q, 0.5f));
      s.add(p + "attn_k.bias", {kv}, mat(1, kv, 0.5f));
      s.add(p + "attn_v.bias", {kv}, mat(1, kv, 0.5f));
    }
  }
  return s;
}

// RoPE inverse frequencies by the published formulas (HF's default and llama3 rope init).
inline std::vector<double> reference_inv_freq(const ModelConfig& c) {
  std::vector<double> f;
  for (int i = 0; i < c.head_dim / 2; ++i) {
    double x = 1.0 / std::pow(static_cast<double>(c.rope_theta), (2.0 * i) / c.head_dim);
    if (c.rope_scaling.type == "llama3") {
      const auto& s = c.rope_scaling;
      const double wl = 2 * std::numbers::pi / x;
      const double lo_wl = s.original_max_position / static_cast<double>(s.low_freq_factor);
      const double hi_wl = s.original_max_position / static_cast<double>(s.high_freq_factor);
      if (wl > lo_wl) {
        x = x / s.factor;
      } else if (wl >= hi_wl) {
        const double sm = (s.original_max_position / wl - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        x = (1 - sm) * x / s.factor + sm * x;
      }
    }
    f.push_back(x);
  }
  return f;
}

// logits (n, vocab) for tokens at positions 0..n-1, in double.
inline std::vector<double> reference_forward(const ModelConfig& c, const MemorySource& s,
                                             const std::vector<int32_t>& tokens) {
  const int n = static_cast<int>(tokens.size()), H = c.hidden, F = c.ffn, V = c.vocab, D = c.head_dim,
            NH = c.n_heads, NK = c.n_kv_heads;
  auto W = [&](const std::string& name) { return s.values(name); };
  using Mat = std::vector<std::vector<double>>;
  auto rmsnorm = [&](const Mat& x, const std::vector<float>& w) {
    Mat y = x;
    for (int t = 0; t < n; ++t) {
      double ss = 0;
      for (int i = 0; i < H; ++i) ss += x[t][i] * x[t][i];
      const double inv = 1.0 / std::sqrt(ss / H + c.rms_eps);
      for (int i = 0; i < H; ++i) y[t][i] = x[t][i] * inv * w[i];
    }
    return y;
  };
  auto linear = [&](const Mat& x, const std::string& wname, int out, int in, const std::string& bname) {
    const auto w = W(wname);
    const std::vector<float> b = s.has(bname) ? W(bname) : std::vector<float>(static_cast<size_t>(out), 0.0f);
    Mat y(n, std::vector<double>(out));
    for (int t = 0; t < n; ++t)
      for (int o = 0; o < out; ++o) {
        double acc = b[o];
        for (int i = 0; i < in; ++i) acc += static_cast<double>(w[static_cast<size_t>(o) * in + i]) * x[t][i];
        y[t][o] = acc;
      }
    return y;
  };
  const auto inv_freq = reference_inv_freq(c);
  auto rope = [&](Mat& x, int heads) {
    for (int t = 0; t < n; ++t)
      for (int h = 0; h < heads; ++h)
        for (int i = 0; i < D / 2; ++i) {
          const double a = t * inv_freq[i], x0 = x[t][h * D + i], x1 = x[t][h * D + i + D / 2];
          x[t][h * D + i] = x0 * std::cos(a) - x1 * std::sin(a);
          x[t][h * D + i + D / 2] = x1 * std::cos(a) + x0 * std::sin(a);
        }
  };
  const auto emb = W("token_embd.weight");
  Mat x(n, std::vector<double>(H));
  for (int t = 0; t < n; ++t)
    for (int i = 0; i < H; ++i) x[t][i] = emb[static_cast<size_t>(tokens[t]) * H + i];
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = fmt::format("blk.{}.", l);
    Mat xn = rmsnorm(x, W(p + "attn_norm.weight"));
    Mat q = linear(xn, p + "attn_q.weight", NH * D, H, p + "attn_q.bias");
    Mat k = linear(xn, p + "attn_k.weight", NK * D, H, p + "attn_k.bias");
    Mat v = linear(xn, p + "attn_v.weight", NK * D, H, p + "attn_v.bias");
    rope(q, NH);
    rope(k, NK);
    Mat att(n, std::vector<double>(NH * D, 0.0));
    for (int h = 0; h < NH; ++h) {
      const int kh = h / (NH / NK);
      for (int t = 0; t < n; ++t) {
        std::vector<double> sc(t + 1);
        double mx = -1e300;
        for (int j = 0; j <= t; ++j) {
          double d = 0;
          for (int i = 0; i < D; ++i) d += q[t][h * D + i] * k[j][kh * D + i];
          sc[j] = d / std::sqrt(static_cast<double>(D));
          mx = std::max(mx, sc[j]);
        }
        double sum = 0;
        for (int j = 0; j <= t; ++j) sum += sc[j] = std::exp(sc[j] - mx);
        for (int j = 0; j <= t; ++j)
          for (int i = 0; i < D; ++i) att[t][h * D + i] += sc[j] / sum * v[j][kh * D + i];
      }
    }
    Mat o = linear(att, p + "attn_output.weight", H, NH * D, "");
    for (int t = 0; t < n; ++t)
      for (int i = 0; i < H; ++i) x[t][i] += o[t][i];
    xn = rmsnorm(x, W(p + "ffn_norm.weight"));
    Mat g = linear(xn, p + "ffn_gate.weight", F, H, ""), u = linear(xn, p + "ffn_up.weight", F, H, "");
    for (int t = 0; t < n; ++t)
      for (int i = 0; i < F; ++i) g[t][i] = g[t][i] / (1 + std::exp(-g[t][i])) * u[t][i];
    Mat d = linear(g, p + "ffn_down.weight", H, F, "");
    for (int t = 0; t < n; ++t)
      for (int i = 0; i < H; ++i) x[t][i] += d[t][i];
  }
  Mat xn = rmsnorm(x, W("output_norm.weight"));
  Mat logits = linear(xn, s.has("output.weight") ? "output.weight" : "token_embd.weight", V, H, "");
  std::vector<double> out;
  for (int t = 0; t < n; ++t) out.insert(out.end(), logits[t].begin(), logits[t].end());
  return out;
}

inline std::vector<int32_t> random_tokens(int n, int vocab, std::mt19937_64& g) {
  std::uniform_int_distribution<int32_t> u(0, vocab - 1);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& x : t) x = u(g);
  return t;
}

}  // namespace testmodel
