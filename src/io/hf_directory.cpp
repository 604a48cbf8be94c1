// Hugging Face checkpoint directories: loading (config.json + one or many safetensors shards +
// tokenizer.json) into a ModelSource with canonical tensor names, and writing one from a
// ModelSource (`micromix convert`).
#include "io/hf_directory.hpp"

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "io/hf_config.hpp"
#include "micromix/bf16.hpp"
#include "micromix/error.hpp"
#include "micromix/safetensors.hpp"

namespace micromix {

using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

json read_json(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  MM_CHECK(f, "cannot open '{}'", p.string());
  std::stringstream ss;
  ss << f.rdbuf();
  try {
    return json::parse(ss.str());
  } catch (const json::exception& e) {
    fail("'{}' is not valid JSON: {}", p.string(), e.what());
  }
}

// The safetensors files of a checkpoint: model.safetensors, or the shards that
// model.safetensors.index.json's weight_map names (each must be a plain file name in `dir`).
std::vector<std::string> shard_paths(const fs::path& dir, std::map<std::string, std::string>& weight_map) {
  if (fs::exists(dir / "model.safetensors")) return {(dir / "model.safetensors").string()};
  const fs::path index = dir / "model.safetensors.index.json";
  MM_CHECK(fs::exists(index), "'{}' has neither model.safetensors nor model.safetensors.index.json", dir.string());
  const json j = read_json(index);
  const auto wm = j.is_object() ? j.find("weight_map") : j.end();
  MM_CHECK(j.is_object() && wm != j.end() && wm->is_object() && !wm->empty(),
           "'{}': missing or empty key 'weight_map'", index.string());
  std::set<std::string> files;
  for (const auto& [name, file] : wm->items()) {
    MM_CHECK(file.is_string(), "'{}': weight_map entry '{}' is not a file name", index.string(), name);
    const std::string f = file.get<std::string>();
    MM_CHECK(!f.empty() && f.find('/') == std::string::npos && f.find('\\') == std::string::npos && f != "." &&
                 f != "..",
             "'{}': weight_map entry '{}' names '{}', not a file in the same directory", index.string(), name, f);
    weight_map[name] = f;
    files.insert(f);
  }
  std::vector<std::string> paths;
  for (const auto& f : files) paths.push_back((dir / f).string());
  return paths;
}

// The checkpoint's tensors under canonical names (views into the memory-mapped shards).
class HfTensorSource final : public TensorSource {
 public:
  explicit HfTensorSource(std::unique_ptr<SafetensorsSource> base) : base_(std::move(base)) {}

  void add(const std::string& canonical, const TensorView& v) {
    TensorView c = v;
    c.name = canonical;
    views_.emplace(canonical, std::move(c));
  }
  std::vector<std::string> names() const override {
    std::vector<std::string> out;
    for (const auto& [n, _] : views_) out.push_back(n);
    return out;
  }
  const TensorView* find(std::string_view name) const override {
    const auto it = views_.find(name);
    return it == views_.end() ? nullptr : &it->second;
  }

 private:
  std::unique_ptr<SafetensorsSource> base_;
  std::map<std::string, TensorView, std::less<>> views_;
};

// Every tensor the forward pass needs is present, floating point, with the shape config.json implies.
void check_tensors(const HfTensorSource& t, const ModelConfig& c, const std::string& dir) {
  const auto expect = [&](const std::string& canonical, std::vector<int64_t> shape) {
    const std::string hf = io::hf_from_canonical(canonical).value_or(canonical);
    const TensorView* v = t.find(canonical);
    MM_CHECK(v, "'{}': missing tensor '{}'", dir, hf);
    MM_CHECK(v->dtype == DType::f32 || v->dtype == DType::f16 || v->dtype == DType::bf16,
             "'{}': tensor '{}' has dtype {}, expected F32, F16 or BF16", dir, hf, safetensors_dtype_name(v->dtype));
    MM_CHECK(v->shape == shape, "'{}': tensor '{}' has shape [{}], but config.json implies [{}]", dir, hf,
             fmt::join(v->shape, ", "), fmt::join(shape, ", "));
  };
  const int64_t h = c.hidden, q = int64_t{c.n_heads} * c.head_dim, kv = int64_t{c.n_kv_heads} * c.head_dim;
  expect("token_embd.weight", {c.vocab, h});
  expect("output_norm.weight", {h});
  if (!c.tied_embeddings) expect("output.weight", {c.vocab, h});
  for (int l = 0; l < c.n_layers; ++l) {
    const auto n = [l](const char* part) { return fmt::format("blk.{}.{}", l, part); };
    expect(n("attn_norm.weight"), {h});
    expect(n("attn_q.weight"), {q, h});
    expect(n("attn_k.weight"), {kv, h});
    expect(n("attn_v.weight"), {kv, h});
    expect(n("attn_output.weight"), {h, q});
    expect(n("ffn_norm.weight"), {h});
    expect(n("ffn_gate.weight"), {c.ffn, h});
    expect(n("ffn_up.weight"), {c.ffn, h});
    expect(n("ffn_down.weight"), {h, c.ffn});
    if (c.qkv_bias) {
      expect(n("attn_q.bias"), {q});
      expect(n("attn_k.bias"), {kv});
      expect(n("attn_v.bias"), {kv});
    }
  }
  // Nothing beyond the config's layers.
  for (const auto& name : t.names())
    if (name.starts_with("blk.")) {
      const int l = std::atoi(name.c_str() + 4);
      MM_CHECK(l < c.n_layers, "'{}': tensor '{}' belongs to layer {}, but num_hidden_layers is {}", dir,
               io::hf_from_canonical(name).value_or(name), l, c.n_layers);
    }
}

// Special token ids: config.json's bos/eos/pad_token_id (eos may be a list: the first), then
// tokenizer_config.json's token strings when present.
void read_special_ids(const fs::path& dir, const json& config, TokenizerSpec& spec) {
  const auto id_from = [&](const json& v) -> int32_t {
    const json& x = v.is_array() && !v.empty() ? v[0] : v;
    if (!x.is_number_integer()) return -1;
    const int64_t i = x.get<int64_t>();
    return i >= 0 && static_cast<size_t>(i) < spec.tokens.size() ? static_cast<int32_t>(i) : -1;
  };
  for (auto [key, id] : {std::pair{"bos_token_id", &spec.bos_id}, {"eos_token_id", &spec.eos_id},
                         {"pad_token_id", &spec.pad_id}})
    if (const auto it = config.find(key); it != config.end() && *id < 0) *id = id_from(*it);
  const fs::path tc = dir / "tokenizer_config.json";
  if (!fs::exists(tc)) return;
  const json j = read_json(tc);
  if (!j.is_object()) return;
  std::map<std::string_view, int32_t> id_of;
  for (size_t i = 0; i < spec.tokens.size(); ++i) id_of.emplace(spec.tokens[i], static_cast<int32_t>(i));
  for (auto [key, id] : {std::pair{"bos_token", &spec.bos_id}, {"eos_token", &spec.eos_id}, {"pad_token", &spec.pad_id}}) {
    const auto it = j.find(key);
    if (it == j.end()) continue;
    const json& v = it->is_object() && it->contains("content") ? (*it)["content"] : *it;  // AddedToken form
    if (!v.is_string()) continue;
    const auto found = id_of.find(v.get_ref<const std::string&>());
    if (found != id_of.end()) *id = found->second;
  }
}

}  // namespace

namespace io {

ModelSource load_hf_directory(const std::string& dir_str) {
  const fs::path dir(dir_str);
  MM_CHECK(fs::is_directory(dir), "'{}' is not a directory", dir_str);
  ModelSource m;
  m.path = dir_str;
  m.format = "safetensors";

  const fs::path config_path = dir / "config.json";
  MM_CHECK(fs::exists(config_path), "'{}' has no config.json", dir_str);
  const json config = read_json(config_path);
  m.config = hf_config_from_json(config, config_path.string());
  if (m.config.name.empty()) m.config.name = fs::absolute(dir).lexically_normal().filename().string();

  std::map<std::string, std::string> weight_map;
  auto owned = std::make_unique<SafetensorsSource>(shard_paths(dir, weight_map));
  const SafetensorsSource* base = owned.get();
  auto tensors = std::make_unique<HfTensorSource>(std::move(owned));
  for (const auto& [name, file] : weight_map)
    MM_CHECK(base->find(name), "'{}': tensor '{}' listed in model.safetensors.index.json is not in '{}'", dir_str,
             name, file);
  for (const auto& name : base->names()) {
    const auto canonical = canonical_from_hf(name);
    if (!canonical) {
      if (name.ends_with(".rotary_emb.inv_freq")) continue;  // buffer some old checkpoints saved
      fail("'{}': unknown tensor '{}' (not part of a {} checkpoint)", dir_str, name, m.config.arch);
    }
    if (*canonical == "output.weight" && m.config.tied_embeddings) continue;  // tied: lm_head is embed_tokens
    tensors->add(*canonical, *base->find(name));
  }
  check_tensors(*tensors, m.config, dir_str);
  m.tensors = std::move(tensors);

  const fs::path tok = dir / "tokenizer.json";
  MM_CHECK(fs::exists(tok), "'{}' has no tokenizer.json (byte-level BPE tokenizer expected)", dir_str);
  m.tokenizer = tokenizer_spec_from_json(tok.string());
  MM_CHECK(m.tokenizer.tokens.size() <= static_cast<size_t>(m.config.vocab),
           "'{}': tokenizer.json has {} tokens, more than config.json's vocab_size {}", dir_str,
           m.tokenizer.tokens.size(), m.config.vocab);
  read_special_ids(dir, config, m.tokenizer);
  return m;
}

}  // namespace io

// ---- writer ----------------------------------------------------------------

namespace {

// Writes text through a temporary file renamed into place.
void write_text_file(const fs::path& p, const std::string& text) {
  const fs::path tmp = p.string() + ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    f.write(text.data(), static_cast<std::streamsize>(text.size()));
    f.close();
    if (!f) {
      std::error_code ec;
      fs::remove(tmp, ec);
      fail("writing '{}' failed", tmp.string());
    }
  }
  std::error_code ec;
  fs::rename(tmp, p, ec);
  MM_CHECK(!ec, "writing '{}': {}", p.string(), ec.message());
}

std::string dump(const json& j, const std::string& what) {
  try {
    return j.dump(2) + "\n";
  } catch (const json::exception& e) {
    fail("writing {}: {}", what, e.what());
  }
}

}  // namespace

void write_hf_directory(const ModelSource& m, const std::string& dir_str, DType dtype, bool overwrite) {
  MM_CHECK(dtype == DType::f32 || dtype == DType::bf16, "convert: output dtype must be f32 or bf16");
  MM_CHECK(m.tensors, "convert: the model has no tensors");
  const fs::path dir(dir_str);
  const fs::path weights = dir / "model.safetensors";
  MM_CHECK(overwrite || !fs::exists(weights), "'{}' already exists (HINT: pass --force to replace it)",
           weights.string());
  // Everything that can fail on content fails before anything is written.
  const std::string torch_dtype = dtype == DType::f32 ? "float32" : "bfloat16";
  const std::string config = dump(io::hf_config_to_json(m.config, m.tokenizer, torch_dtype), "config.json");
  std::string tokenizer, tokenizer_config;
  if (!m.tokenizer.tokens.empty()) {
    tokenizer = dump(io::hf_tokenizer_json(m.tokenizer), "tokenizer.json");
    tokenizer_config = dump(io::hf_tokenizer_config_json(m.tokenizer, m.config), "tokenizer_config.json");
  }
  std::vector<SafetensorsItem> items;
  for (const std::string& name : m.tensors->names()) {
    if (name == "rope_freqs.weight") continue;  // Llama 3 RoPE scaling: config.json's rope_scaling says it
    if (name == "output.weight" && m.config.tied_embeddings) continue;
    const auto hf = io::hf_from_canonical(name);
    MM_CHECK(hf, "convert: tensor '{}' has no Hugging Face name", name);
    const TensorView* v = m.tensors->find(name);
    MM_CHECK(v, "convert: tensor '{}' is listed but not found", name);
    items.push_back({*hf, dtype, v->shape, [v, dtype] {
                       const std::vector<float> f = to_float(*v);
                       std::vector<uint8_t> out;
                       if (dtype == DType::f32) {
                         out.resize(f.size() * 4);
                         if (!f.empty()) std::memcpy(out.data(), f.data(), out.size());
                       } else {
                         out.resize(f.size() * 2);
                         for (size_t i = 0; i < f.size(); ++i) {
                           const uint16_t b = float_to_bf16(f[i]);
                           out[2 * i] = static_cast<uint8_t>(b);
                           out[2 * i + 1] = static_cast<uint8_t>(b >> 8);
                         }
                       }
                       return out;
                     }});
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  MM_CHECK(!ec, "cannot create directory '{}': {}", dir_str, ec.message());
  // transformers refuses safetensors files whose metadata lacks format = pt.
  write_safetensors(weights.string(), std::move(items), {{"format", "pt"}}, overwrite);
  write_text_file(dir / "config.json", config);
  if (!tokenizer.empty()) {
    write_text_file(dir / "tokenizer.json", tokenizer);
    write_text_file(dir / "tokenizer_config.json", tokenizer_config);
  }
}

}  // namespace micromix
