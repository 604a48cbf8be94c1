// The CPU inference engine for Llama-family decoders (Llama-2/3.x, Qwen2/2.5, Mistral, SmolLM2):
// float32 activations, weights through Linear (linear.hpp), a float32 KV cache, batched prefill
// and single-token decode, plus sampling and perplexity on top.
#pragma once
#include <cstdint>
#include <functional>
#include <random>
#include <span>
#include <vector>

#include "micromix/linear.hpp"
#include "micromix/model_source.hpp"

namespace micromix {

// K and V of every layer for up to `capacity` positions.
class KvCache {
 public:
  KvCache(int n_layers, int64_t capacity, int n_kv_heads, int head_dim);
  int64_t length() const { return length_; }  // positions filled, 0..capacity
  int64_t capacity() const { return capacity_; }
  void clear() { length_ = 0; }
  // Forgets positions >= n (n <= length()), e.g. to rewind a generation.
  void truncate(int64_t n);

  // (capacity, n_kv_heads, head_dim) row-major.
  float* k(int layer) { return k_[static_cast<size_t>(layer)].data(); }
  float* v(int layer) { return v_[static_cast<size_t>(layer)].data(); }
  const float* k(int layer) const { return k_[static_cast<size_t>(layer)].data(); }
  const float* v(int layer) const { return v_[static_cast<size_t>(layer)].data(); }
  int n_layers() const { return static_cast<int>(k_.size()); }
  int n_kv_heads() const { return n_kv_heads_; }
  int head_dim() const { return head_dim_; }

 private:
  friend class Model;
  int64_t capacity_, length_ = 0;
  int n_kv_heads_, head_dim_;
  std::vector<std::vector<float>> k_, v_;
};

// The four distinct inputs of a block's linear layers (what calibration measures).
enum class LinearInput {
  attn_qkv,     // attn_norm(x): input of q, k and v       (hidden features)
  attn_output,  // attention output: input of attn_output  (n_heads * head_dim)
  ffn_gate_up,  // ffn_norm(x): input of gate and up        (hidden)
  ffn_down,     // silu(gate) * up: input of ffn_down       (ffn)
};
const char* linear_input_name(LinearInput which);

// Sees each distinct linear input as the forward pass computes it: x is (n_tokens, features).
using LinearInputObserver =
    std::function<void(int layer, LinearInput which, const float* x, int64_t n_tokens, int64_t features)>;

class Model {
 public:
  // Dequantizes every tensor to float32 and builds each projection through make_linear (names
  // "blk.N.attn_q.weight" ... and "output.weight" for the lm_head, also when it is tied to
  // token_embd). Throws micromix::Error naming the tensor on a missing tensor or a wrong shape.
  static Model load(const ModelSource& src, const LinearFactory& make_linear = make_dense_linear);
  // Same from a bare tensor source and config (tests, converters).
  static Model load(const ModelConfig& config, const TensorSource& tensors,
                    const LinearFactory& make_linear = make_dense_linear);

  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;
  ~Model();

  const ModelConfig& config() const { return cfg_; }
  // A cache for up to `capacity` positions (<= 0: the config's max_ctx).
  KvCache new_cache(int64_t capacity = 0) const;

  // Runs `tokens` at positions cache.length() ... cache.length() + n - 1 and appends their K/V to
  // the cache. logits becomes (n_logits, vocab) row-major for the LAST n_logits tokens
  // (n_logits < 0: all n; 1: the last token only, as in decoding; 0: none).
  // Throws micromix::Error (cache unchanged) on an out-of-range token id or a full cache.
  void forward(std::span<const int32_t> tokens, KvCache& cache, std::vector<float>& logits,
               int64_t n_logits = -1) const;

  void set_linear_input_observer(LinearInputObserver observer) { observer_ = std::move(observer); }

  struct Layer {
    std::vector<float> attn_norm, ffn_norm;  // (hidden)
    std::unique_ptr<Linear> q, k, v, o, gate, up, down;
  };
  const Layer& layer(int i) const { return layers_[static_cast<size_t>(i)]; }
  // For tools that swap projections in place (e.g. sensitivity measurement); shapes must match.
  Layer& mutable_layer(int i) { return layers_[static_cast<size_t>(i)]; }
  const Linear& lm_head() const { return *lm_head_; }

 private:
  Model() = default;
  void observe(int layer, LinearInput which, const float* x, int64_t n, int64_t features) const {
    if (observer_) observer_(layer, which, x, n, features);
  }

  ModelConfig cfg_;
  std::vector<float> token_embd_;  // (vocab, hidden)
  std::vector<float> output_norm_;  // (hidden)
  std::vector<Layer> layers_;
  std::unique_ptr<Linear> lm_head_;
  std::vector<double> rope_inv_freq_;  // (head_dim / 2), scaling applied
  LinearInputObserver observer_;
};

// ---- sampling ----------------------------------------------------------------------------------
struct SamplerOptions {
  float temperature = 0.0f;  // 0: greedy (argmax)
  int top_k = 40;            // 0: off
  float top_p = 0.95f;       // 1: off
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(SamplerOptions opt);
  // Picks a token id from one row of logits (vocab values).
  int32_t sample(std::span<const float> logits);

 private:
  SamplerOptions opt_;
  std::mt19937_64 rng_;
};

// ---- perplexity --------------------------------------------------------------------------------
struct PerplexityOptions {
  int64_t ctx = 512;
  // false: every window of ctx tokens predicts its tokens 1..ctx-1 (a last, shorter window too).
  // true: llama.cpp's `llama-perplexity`: only whole windows, the first token of each replaced by
  // bos_id when bos_id >= 0, only the second half scored (positions ctx/2 .. ctx-2 predicting
  // the next token); needs at least 2*ctx tokens.
  bool llamacpp = false;
  int32_t bos_id = -1;
  // Called after each window: (windows done, windows total, tokens scored so far, running PPL).
  std::function<void(int64_t, int64_t, int64_t, double)> progress;
};

struct PerplexityResult {
  int64_t tokens = 0, windows = 0, predicted = 0;
  double mean_nll = 0.0, ppl = 0.0;
};

PerplexityResult perplexity(const Model& model, std::span<const int32_t> tokens, const PerplexityOptions& opt);

}  // namespace micromix
