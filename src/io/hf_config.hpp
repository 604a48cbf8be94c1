// Hugging Face conventions (internal): config.json <-> ModelConfig, HF tensor names <-> micromix's
// canonical (GGUF) names, and tokenizer.json / tokenizer_config.json from a TokenizerSpec.
#pragma once
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "micromix/model_source.hpp"
#include "micromix/tokenizer.hpp"

namespace micromix::io {

// config.json (LlamaForCausalLM, Qwen2ForCausalLM, MistralForCausalLM) -> ModelConfig. `path`
// names the file in errors; a missing, mistyped or unsupported key is an Error naming it.
ModelConfig hf_config_from_json(const nlohmann::json& j, const std::string& path);
// ModelConfig -> config.json that transformers loads. `torch_dtype` is "float32" or "bfloat16".
nlohmann::json hf_config_to_json(const ModelConfig& c, const TokenizerSpec& tok, std::string_view torch_dtype);

// "model.layers.3.self_attn.q_proj.weight" -> "blk.3.attn_q.weight"; nullopt for names that are
// not part of a Llama/Qwen2/Mistral checkpoint.
std::optional<std::string> canonical_from_hf(std::string_view hf_name);
// The inverse; nullopt for canonical names without an HF counterpart (rope_freqs.weight).
std::optional<std::string> hf_from_canonical(std::string_view canonical);

// tokenizer.json (byte-level BPE) that Hugging Face `tokenizers` loads with the same ids, and a
// tokenizer_config.json naming the special tokens. Throws Error for specs HF cannot express
// (repeated token texts, unknown pre-tokenizer).
nlohmann::json hf_tokenizer_json(const TokenizerSpec& spec);
nlohmann::json hf_tokenizer_config_json(const TokenizerSpec& spec, const ModelConfig& c);

}  // namespace micromix::io
