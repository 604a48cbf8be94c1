// MicroMix quantized checkpoints: one safetensors file that holds a model quantized by a plan.
//
// Tensors:
//   token_embd.weight, output_norm.weight, [output.weight], blk.N.attn_norm.weight,
//   blk.N.ffn_norm.weight, blk.N.attn_{q,k,v}.bias (Qwen2)              F32, as in the source
//   blk.N.<input>.perm               I32 (K)        input: attn_qkv, attn_output, ffn_gate_up, ffn_down
//   <linear>.weight.mx{4,6,8}.codes  U8 (rows, packed row bytes)   only for non-empty segments
//   <linear>.weight.mx{4,6,8}.scales U8 (rows, segment K / 32)
// Metadata (__metadata__, strings): format = "micromix", format_version = "1", scheme, scale_rule,
// rounding, quantize_activations, config (JSON), tokenizer (JSON), plan (JSON: per layer and input
// the segment sizes n4, n6, n8 and the MXFP6 element).
// The packed layout of codes and scales is mx_pack.hpp's.
#pragma once
#include <string>

#include "micromix/model_source.hpp"
#include "micromix/quant_plan.hpp"

namespace micromix {

inline constexpr const char* kCheckpointFormat = "micromix";
inline constexpr const char* kCheckpointVersion = "1";

// Quantizes every linear layer of src by plan and writes the checkpoint. Refuses to replace an
// existing file unless overwrite. `progress` (optional) is called per layer.
void save_quantized_checkpoint(const std::string& path, const ModelSource& src, const QuantPlan& plan,
                               bool overwrite = false, const std::function<void(int, int)>& progress = {});

// True when the file is a safetensors file whose metadata says format = micromix.
bool is_quantized_checkpoint(const std::string& path);

// Opens a checkpoint as a ModelSource (format "micromix") whose linear_factory builds MixedLinear
// layers straight from the packed tensors. Throws micromix::Error naming the problem when the
// file is inconsistent (version, missing tensors, wrong sizes, invalid permutation or split).
ModelSource load_quantized_checkpoint(const std::string& path, QuantPlan* plan_out = nullptr);

}  // namespace micromix
