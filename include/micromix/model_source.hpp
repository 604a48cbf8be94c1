// A model as loaded from disk: architecture config, tensors under canonical names, tokenizer.
//
// Canonical tensor names (llama.cpp's GGUF names), each (out, in) row-major for linear weights:
//   token_embd.weight (vocab, hidden)        output_norm.weight (hidden)
//   output.weight (vocab, hidden), absent when embeddings are tied
//   blk.N.attn_norm.weight   blk.N.attn_q.weight / .bias   blk.N.attn_k.weight / .bias
//   blk.N.attn_v.weight / .bias   blk.N.attn_output.weight
//   blk.N.ffn_norm.weight   blk.N.ffn_gate.weight   blk.N.ffn_up.weight   blk.N.ffn_down.weight
// Q and K rows are in Hugging Face order (rotate-half RoPE, "NEOX" style): the GGUF loader undoes
// llama.cpp's convert-time permutation of Llama Q/K, so every source feeds one forward pass.
#pragma once
#include <memory>
#include <string>

#include "micromix/linear.hpp"
#include "micromix/tensor.hpp"
#include "micromix/tokenizer.hpp"

namespace micromix {

struct RopeScaling {
  std::string type = "none";  // "none" or "llama3"
  float factor = 1.0f, low_freq_factor = 1.0f, high_freq_factor = 4.0f;
  int original_max_position = 8192;
};

struct ModelConfig {
  std::string arch = "llama";  // "llama", "qwen2", "mistral"
  std::string name;
  int n_layers = 0, hidden = 0, ffn = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0, vocab = 0;
  int max_ctx = 2048;
  float rope_theta = 10000.0f, rms_eps = 1e-5f;
  RopeScaling rope_scaling;
  bool tied_embeddings = false;
  bool qkv_bias = false;  // Qwen2
};

struct ModelSource {
  ModelConfig config;
  std::unique_ptr<TensorSource> tensors;
  TokenizerSpec tokenizer;
  std::string path, format;  // format: "gguf", "safetensors" (HF directory), "micromix" (quantized)
  // Set by sources whose linear layers are stored pre-quantized (micromix checkpoints): builds each
  // projection from the stored data; Model::load uses it instead of the factory it is given.
  LinearFactory linear_factory;
};

// Opens a .gguf file or a Hugging Face directory (config.json + *.safetensors + tokenizer.json).
ModelSource load_model_source(const std::string& path);

}  // namespace micromix
