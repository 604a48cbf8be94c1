// Hugging Face checkpoint directories: config.json + *.safetensors (one or many shards) +
// tokenizer.json, for the Llama, Qwen2 and Mistral families (internal).
#pragma once
#include <string>

#include "micromix/model_source.hpp"

namespace micromix::io {

ModelSource load_hf_directory(const std::string& dir);

}  // namespace micromix::io
