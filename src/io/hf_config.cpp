// Hugging Face conventions: config.json <-> ModelConfig, tensor names, tokenizer.json writer.
#include "io/hf_config.hpp"

#include <charconv>
#include <cmath>
#include <map>

#include <fmt/format.h>

#include "micromix/error.hpp"
#include "model/pretokenize.hpp"

namespace micromix::io {

using json = nlohmann::json;

namespace {

struct ArchName {
  const char* hf_class;
  const char* model_type;
  const char* arch;
};
constexpr ArchName kArchs[] = {
    {"LlamaForCausalLM", "llama", "llama"},
    {"Qwen2ForCausalLM", "qwen2", "qwen2"},
    {"MistralForCausalLM", "mistral", "mistral"},
};

std::string brief(const json& j) {
  std::string s = j.dump();
  return s.size() > 80 ? s.substr(0, 80) + "..." : s;
}

// Typed access to config.json keys with errors that name the file and the key.
struct Keys {
  const json& j;
  const std::string& path;

  const json* find(const char* key) const {
    const auto it = j.find(key);
    return it == j.end() || it->is_null() ? nullptr : &*it;
  }
  template <typename... Args>
  [[noreturn]] void error(fmt::format_string<Args...> f, Args&&... args) const {
    fail("config.json '{}': {}", path, fmt::format(f, std::forward<Args>(args)...));
  }
  int integer(const json& v, const char* key, int lo) const {
    if (!v.is_number_integer()) error("key '{}' must be an integer, got {}", key, brief(v));
    const int64_t x = v.get<int64_t>();
    if (x < lo || x > (int64_t{1} << 30)) error("key '{}' = {} is out of range", key, x);
    return static_cast<int>(x);
  }
  int required_int(const char* key, int lo = 1) const {
    const json* v = find(key);
    if (!v) error("missing key '{}'", key);
    return integer(*v, key, lo);
  }
  int optional_int(const char* key, int def, int lo = 1) const {
    const json* v = find(key);
    return v ? integer(*v, key, lo) : def;
  }
  float number(const json& v, const char* key) const {
    if (!v.is_number()) error("key '{}' must be a number, got {}", key, brief(v));
    const double x = v.get<double>();
    if (!(x > 0) || !std::isfinite(x)) error("key '{}' = {} must be positive", key, x);
    return static_cast<float>(x);
  }
  float optional_float(const char* key, float def) const {
    const json* v = find(key);
    return v ? number(*v, key) : def;
  }
  bool optional_bool(const char* key, bool def) const {
    const json* v = find(key);
    if (!v) return def;
    if (!v->is_boolean()) error("key '{}' must be true or false, got {}", key, brief(*v));
    return v->get<bool>();
  }
};

RopeScaling read_rope_scaling(const Keys& k, const json& rs, const char* key) {
  RopeScaling s;
  if (!rs.is_object()) k.error("key '{}' must be an object or null, got {}", key, brief(rs));
  const Keys sub{rs, k.path};
  const json* type = sub.find("rope_type");
  if (!type) type = sub.find("type");
  if (!type || !type->is_string()) k.error("key '{}' has no string 'rope_type' (or 'type')", key);
  const std::string t = type->get<std::string>();
  if (t == "default") return s;
  if (t != "llama3") k.error("{}.rope_type '{}' is not supported (only default and llama3)", key, t);
  s.type = "llama3";
  const auto need = [&](const char* field) -> const json& {
    const json* v = sub.find(field);
    if (!v) k.error("missing key '{}.{}' for llama3 RoPE scaling", key, field);
    return *v;
  };
  s.factor = sub.number(need("factor"), "factor");
  s.low_freq_factor = sub.number(need("low_freq_factor"), "low_freq_factor");
  s.high_freq_factor = sub.number(need("high_freq_factor"), "high_freq_factor");
  s.original_max_position =
      sub.integer(need("original_max_position_embeddings"), "original_max_position_embeddings", 1);
  if (!(s.high_freq_factor > s.low_freq_factor))
    k.error("{}: high_freq_factor {} must exceed low_freq_factor {}", key, s.high_freq_factor, s.low_freq_factor);
  return s;
}

// A float written as the shortest decimal that reads back as the same float (1e-05, not
// 9.999999747378752e-06), so config.json shows the value the model was trained with.
double shortest(float f) {
  const std::string s = fmt::format("{}", f);
  double d = 0;
  std::from_chars(s.data(), s.data() + s.size(), d);
  return d;
}

}  // namespace

ModelConfig hf_config_from_json(const json& j, const std::string& path) {
  const Keys k{j, path};
  if (!j.is_object()) k.error("top level is a JSON {}, not an object", j.type_name());
  ModelConfig c;
  const json* archs = k.find("architectures");
  if (!archs || !archs->is_array() || archs->empty() || !(*archs)[0].is_string())
    k.error("missing key 'architectures' (a list like [\"LlamaForCausalLM\"])");
  const std::string cls = (*archs)[0].get<std::string>();
  const ArchName* arch = nullptr;
  for (const auto& a : kArchs)
    if (cls == a.hf_class) arch = &a;
  if (!arch) k.error("architecture '{}' is not supported (supported: LlamaForCausalLM, Qwen2ForCausalLM, MistralForCausalLM)", cls);
  c.arch = arch->arch;
  if (const json* n = k.find("_name_or_path"); n && n->is_string()) c.name = n->get<std::string>();

  c.hidden = k.required_int("hidden_size");
  c.ffn = k.required_int("intermediate_size");
  c.n_layers = k.required_int("num_hidden_layers");
  c.n_heads = k.required_int("num_attention_heads");
  c.n_kv_heads = k.optional_int("num_key_value_heads", c.n_heads);
  c.vocab = k.required_int("vocab_size");
  if (c.n_heads % c.n_kv_heads != 0)
    k.error("num_attention_heads {} is not a multiple of num_key_value_heads {}", c.n_heads, c.n_kv_heads);
  if (!k.find("head_dim") && c.hidden % c.n_heads != 0)
    k.error("hidden_size {} is not a multiple of num_attention_heads {} (and no head_dim)", c.hidden, c.n_heads);
  c.head_dim = k.optional_int("head_dim", c.hidden / c.n_heads);
  if (c.head_dim % 2) k.error("head_dim {} must be even", c.head_dim);
  c.max_ctx = k.optional_int("max_position_embeddings", c.max_ctx);
  c.rms_eps = k.optional_float("rms_norm_eps", 1e-6f);  // transformers' default for all three
  c.tied_embeddings = k.optional_bool("tie_word_embeddings", false);

  // RoPE: transformers 4 keys (rope_theta, rope_scaling) or 5's rope_parameters.
  c.rope_theta = k.optional_float("rope_theta", 10000.0f);
  if (const json* rp = k.find("rope_parameters")) {
    c.rope_scaling = read_rope_scaling(k, *rp, "rope_parameters");
    if (const json* t = Keys{*rp, path}.find("rope_theta")) c.rope_theta = k.number(*t, "rope_parameters.rope_theta");
  } else if (const json* rs = k.find("rope_scaling")) {
    c.rope_scaling = read_rope_scaling(k, *rs, "rope_scaling");
  }
  if (const json* act = k.find("hidden_act"); act && *act != "silu")
    k.error("hidden_act {} is not supported (only silu)", brief(*act));
  if (k.optional_bool("mlp_bias", false)) k.error("mlp_bias = true is not supported");
  if (c.arch == "qwen2") {
    c.qkv_bias = true;  // Qwen2 always has q/k/v biases (and none on o_proj)
    if (k.optional_bool("use_sliding_window", false)) k.error("use_sliding_window = true is not supported");
  } else if (k.optional_bool("attention_bias", false)) {
    k.error("attention_bias = true (biases on q/k/v and o_proj) is not supported for {}", cls);
  }
  return c;
}

json hf_config_to_json(const ModelConfig& c, const TokenizerSpec& tok, std::string_view torch_dtype) {
  const ArchName* arch = nullptr;
  for (const auto& a : kArchs)
    if (c.arch == a.arch) arch = &a;
  MM_CHECK(arch, "config.json: architecture '{}' has no Hugging Face counterpart here (llama, qwen2, mistral)", c.arch);
  MM_CHECK(c.arch == "qwen2" || !c.qkv_bias,
           "config.json: {} with q/k/v biases cannot be expressed (transformers' attention_bias adds an o_proj bias)",
           c.arch);
  json j = {
      {"architectures", {arch->hf_class}},
      {"model_type", arch->model_type},
      {"hidden_size", c.hidden},
      {"intermediate_size", c.ffn},
      {"num_hidden_layers", c.n_layers},
      {"num_attention_heads", c.n_heads},
      {"num_key_value_heads", c.n_kv_heads},
      {"head_dim", c.head_dim},
      {"vocab_size", c.vocab},
      {"max_position_embeddings", c.max_ctx},
      {"rms_norm_eps", shortest(c.rms_eps)},
      {"rope_theta", shortest(c.rope_theta)},
      {"tie_word_embeddings", c.tied_embeddings},
      {"hidden_act", "silu"},
      {"torch_dtype", torch_dtype},
      {"use_cache", true},
  };
  if (c.arch == "llama") j["attention_bias"] = false, j["mlp_bias"] = false;
  if (c.arch == "qwen2") j["use_sliding_window"] = false;
  if (c.arch == "mistral") j["sliding_window"] = nullptr;
  if (c.rope_scaling.type == "llama3") {
    j["rope_scaling"] = {{"rope_type", "llama3"},
                         {"factor", shortest(c.rope_scaling.factor)},
                         {"low_freq_factor", shortest(c.rope_scaling.low_freq_factor)},
                         {"high_freq_factor", shortest(c.rope_scaling.high_freq_factor)},
                         {"original_max_position_embeddings", c.rope_scaling.original_max_position}};
  } else {
    MM_CHECK(c.rope_scaling.type == "none", "config.json: RoPE scaling '{}' is not supported", c.rope_scaling.type);
    j["rope_scaling"] = nullptr;
  }
  if (!c.name.empty()) j["_name_or_path"] = c.name;
  if (tok.bos_id >= 0) j["bos_token_id"] = tok.bos_id;
  if (tok.eos_id >= 0) j["eos_token_id"] = tok.eos_id;
  if (tok.pad_id >= 0) j["pad_token_id"] = tok.pad_id;
  return j;
}

// ---- tensor names ----------------------------------------------------------

namespace {

struct NamePair {
  const char* hf;  // after "model.layers.N." for per-layer names
  const char* canonical;  // after "blk.N."
};
constexpr NamePair kLayerNames[] = {
    {"input_layernorm.weight", "attn_norm.weight"},
    {"self_attn.q_proj.weight", "attn_q.weight"},
    {"self_attn.q_proj.bias", "attn_q.bias"},
    {"self_attn.k_proj.weight", "attn_k.weight"},
    {"self_attn.k_proj.bias", "attn_k.bias"},
    {"self_attn.v_proj.weight", "attn_v.weight"},
    {"self_attn.v_proj.bias", "attn_v.bias"},
    {"self_attn.o_proj.weight", "attn_output.weight"},
    {"post_attention_layernorm.weight", "ffn_norm.weight"},
    {"mlp.gate_proj.weight", "ffn_gate.weight"},
    {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},
};
constexpr NamePair kGlobalNames[] = {
    {"model.embed_tokens.weight", "token_embd.weight"},
    {"model.norm.weight", "output_norm.weight"},
    {"lm_head.weight", "output.weight"},
};

// Splits "<prefix><N>.<rest>" into N and rest; nullopt unless N is a plain decimal number.
std::optional<std::pair<int, std::string_view>> layer_of(std::string_view name, std::string_view prefix) {
  if (!name.starts_with(prefix)) return std::nullopt;
  name.remove_prefix(prefix.size());
  const size_t dot = name.find('.');
  if (dot == 0 || dot == std::string_view::npos || dot > 7) return std::nullopt;
  int n = 0;
  for (char ch : name.substr(0, dot)) {
    if (ch < '0' || ch > '9') return std::nullopt;
    n = n * 10 + (ch - '0');
  }
  if (dot > 1 && name[0] == '0') return std::nullopt;  // "01" would alias "1"
  return std::pair{n, name.substr(dot + 1)};
}

}  // namespace

std::optional<std::string> canonical_from_hf(std::string_view hf_name) {
  for (const auto& p : kGlobalNames)
    if (hf_name == p.hf) return std::string(p.canonical);
  if (const auto l = layer_of(hf_name, "model.layers."))
    for (const auto& p : kLayerNames)
      if (l->second == p.hf) return fmt::format("blk.{}.{}", l->first, p.canonical);
  return std::nullopt;
}

std::optional<std::string> hf_from_canonical(std::string_view canonical) {
  for (const auto& p : kGlobalNames)
    if (canonical == p.canonical) return std::string(p.hf);
  if (const auto l = layer_of(canonical, "blk."))
    for (const auto& p : kLayerNames)
      if (l->second == p.canonical) return fmt::format("model.layers.{}.{}", l->first, p.hf);
  return std::nullopt;
}

// ---- tokenizer.json --------------------------------------------------------

json hf_tokenizer_json(const TokenizerSpec& spec) {
  MM_CHECK(spec.model == "gpt2", "tokenizer.json: tokenizer model '{}' is not supported (only gpt2 byte-level BPE)",
           spec.model);
  MM_CHECK(!spec.tokens.empty(), "tokenizer.json: the model has no tokenizer (no tokens)");
  MM_CHECK(spec.token_types.empty() || spec.token_types.size() == spec.tokens.size(),
           "tokenizer.json: {} token types for {} tokens", spec.token_types.size(), spec.tokens.size());
  const pretok::Splitter splitter = pretok::splitter_from_name(spec.pre);

  json vocab = json::object();
  json added = json::array();
  std::map<std::string_view, int32_t> first_id;
  for (size_t i = 0; i < spec.tokens.size(); ++i) {
    const std::string& t = spec.tokens[i];
    const int32_t id = static_cast<int32_t>(i);
    const auto [it, fresh] = first_id.emplace(t, id);
    MM_CHECK(fresh, "tokenizer.json: token text '{}' is used by ids {} and {}; tokenizer.json cannot express that", t,
             it->second, id);
    vocab[t] = id;
    const int32_t type = spec.token_types.empty() ? 1 : spec.token_types[i];
    if (type == 3 || type == 4)  // control and user-defined tokens are matched literally in text
      added.push_back({{"id", id},
                       {"content", t},
                       {"single_word", false},
                       {"lstrip", false},
                       {"rstrip", false},
                       {"normalized", false},
                       {"special", type == 3}});
  }
  const json byte_level = {
      {"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
  json pre;
  switch (splitter) {
    case pretok::Splitter::gpt2:
      pre = byte_level;
      break;
    case pretok::Splitter::smollm:
      pre = {{"type", "Sequence"},
             {"pretokenizers", {{{"type", "Digits"}, {"individual_digits", true}}, byte_level}}};
      break;
    default: {
      json bl = byte_level;
      bl["use_regex"] = false;
      const json split = {{"type", "Split"},
                          {"pattern", {{"Regex", std::string(pretok::splitter_regex(splitter))}}},
                          {"behavior", "Isolated"},
                          {"invert", false}};
      pre = {{"type", "Sequence"}, {"pretokenizers", {split, bl}}};
    }
  }
  json post = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}, {"use_regex", true}};
  if (spec.add_bos && spec.bos_id >= 0) {
    MM_CHECK(static_cast<size_t>(spec.bos_id) < spec.tokens.size(), "tokenizer.json: bos id {} out of range",
             spec.bos_id);
    const std::string& bos = spec.tokens[static_cast<size_t>(spec.bos_id)];
    const json tp = {
        {"type", "TemplateProcessing"},
        {"single", {{{"SpecialToken", {{"id", bos}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
        {"pair",
         {{{"SpecialToken", {{"id", bos}, {"type_id", 0}}}},
          {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
          {{"SpecialToken", {{"id", bos}, {"type_id", 1}}}},
          {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}}},
        {"special_tokens", {{bos, {{"id", bos}, {"ids", {spec.bos_id}}, {"tokens", {bos}}}}}}};
    post = {{"type", "Sequence"}, {"processors", {post, tp}}};
  }
  json unk = nullptr;
  if (spec.unk_missing_bytes && spec.unk_id >= 0 && static_cast<size_t>(spec.unk_id) < spec.tokens.size())
    unk = spec.tokens[static_cast<size_t>(spec.unk_id)];
  return {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", added},
      {"normalizer", splitter == pretok::Splitter::qwen2 ? json{{"type", "NFC"}} : json(nullptr)},
      {"pre_tokenizer", pre},
      {"post_processor", post},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", unk},
        {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr},
        {"fuse_unk", false},
        {"byte_fallback", false},
        {"ignore_merges", spec.ignore_merges || splitter == pretok::Splitter::llama3},
        {"vocab", vocab},
        {"merges", spec.merges}}},
  };
}

json hf_tokenizer_config_json(const TokenizerSpec& spec, const ModelConfig& c) {
  const auto token = [&](int32_t id) -> json {
    if (id < 0 || static_cast<size_t>(id) >= spec.tokens.size()) return nullptr;
    return spec.tokens[static_cast<size_t>(id)];
  };
  return {
      {"tokenizer_class", "PreTrainedTokenizerFast"},
      {"bos_token", token(spec.bos_id)},
      {"eos_token", token(spec.eos_id)},
      {"pad_token", token(spec.pad_id)},
      {"unk_token", spec.unk_missing_bytes ? token(spec.unk_id) : json(nullptr)},
      {"add_bos_token", spec.add_bos},
      {"add_eos_token", false},
      {"clean_up_tokenization_spaces", false},
      {"model_max_length", c.max_ctx},
  };
}

}  // namespace micromix::io
