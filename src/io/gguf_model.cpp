// GGUF -> ModelSource: architecture config from "<arch>.*" keys, tensors as zero-copy views over
// the memory map under their GGUF names (= micromix's canonical names), tokenizer from
// "tokenizer.ggml.*".
//
// Llama Q/K rows. llama.cpp's converter permutes the rows of Llama q_proj/k_proj (weights and
// biases) so that its RoPE can rotate adjacent pairs: for n_head heads of head_dim rows,
//   gguf = hf.reshape(n_head, 2, head_dim/2, ...).swapaxes(1, 2).reshape(hf.shape)
// i.e. gguf row h*hd + 2i + s holds hf row h*hd + s*hd/2 + i (s in {0, 1}, i < hd/2); K uses
// n_kv_heads. micromix's canonical order is Hugging Face's (rotate-half), so for arch "llama" the
// loader undoes it. Blocks of a quantized type never straddle rows, so the rows are moved as raw
// bytes: those tensors keep their stored dtype (exact, no dequantization) but are OWNED copies
// instead of views of the map. Other architectures (qwen2, ...) are converted without permutation.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "io/gguf.hpp"
#include "micromix/error.hpp"

namespace micromix::io::gguf {
namespace {

class GgufTensorSource final : public TensorSource {
 public:
  explicit GgufTensorSource(std::shared_ptr<File> f) : file_(std::move(f)) {
    for (const TensorInfo& t : file_->tensors()) {
      TensorView v;
      v.name = t.name;
      v.dtype = t.dtype;
      v.shape.assign(t.ne.rbegin(), t.ne.rend());  // ggml innermost-first -> row-major outermost-first
      v.data = file_->tensor_data(t);
      order_.push_back(t.name);
      views_.emplace(t.name, std::move(v));
    }
  }

  std::vector<std::string> names() const override { return order_; }
  const TensorView* find(std::string_view name) const override {
    auto it = views_.find(name);
    return it == views_.end() ? nullptr : &it->second;
  }

  // Replaces the rows of `name` (if present) by llama.cpp's inverse Q/K permutation.
  void unpermute_rows(const std::string& name, int64_t n_head) {
    auto it = views_.find(name);
    if (it == views_.end()) return;
    TensorView& v = it->second;
    const int64_t rows = v.shape.empty() ? 1 : v.shape.front();
    MM_CHECK(n_head > 0 && rows > 0 && rows % (2 * n_head) == 0,
             "gguf '{}': tensor '{}' has {} rows, not a multiple of 2 x {} heads; cannot undo the Q/K permutation",
             file_->path(), name, rows, n_head);
    if (v.data.empty()) return;  // no elements to reorder (rows of zero length)
    const int64_t hd = rows / n_head, half = hd / 2;
    const size_t row_bytes = v.data.size() / static_cast<size_t>(rows);
    auto& buf = owned_.emplace_back(v.data.size());
    for (int64_t h = 0; h < n_head; ++h)
      for (int64_t s = 0; s < 2; ++s)
        for (int64_t i = 0; i < half; ++i) {
          const int64_t hf_row = h * hd + s * half + i, gguf_row = h * hd + 2 * i + s;
          std::memcpy(buf.data() + static_cast<size_t>(hf_row) * row_bytes,
                      v.data.data() + static_cast<size_t>(gguf_row) * row_bytes, row_bytes);
        }
    v.data = buf;
  }

 private:
  std::shared_ptr<File> file_;
  std::map<std::string, TensorView, std::less<>> views_;
  std::vector<std::string> order_;
  std::vector<std::vector<uint8_t>> owned_;  // views point into these; a moved vector keeps its heap buffer
};

struct Keys {
  const File& f;
  std::string arch;

  const Value* get(std::string_view key) const { return f.find(key); }
  const Value* arch_key(std::string_view suffix) const { return f.find(fmt::format("{}.{}", arch, suffix)); }
  template <typename... Args>
  [[noreturn]] void error(fmt::format_string<Args...> fm, Args&&... args) const {
    fail("gguf '{}': model config: {}", f.path(), fmt::format(fm, std::forward<Args>(args)...));
  }
  int required_int(std::string_view suffix) const {
    const Value* v = arch_key(suffix);
    if (!v) error("missing key '{}.{}'", arch, suffix);
    return checked_int(*v, suffix);
  }
  int optional_int(std::string_view suffix, int def) const {
    const Value* v = arch_key(suffix);
    return v ? checked_int(*v, suffix) : def;
  }
  float optional_float(std::string_view suffix, float def) const {
    const Value* v = arch_key(suffix);
    return v ? static_cast<float>(v->as_float(fmt::format("'{}.{}'", arch, suffix))) : def;
  }
  int checked_int(const Value& v, std::string_view suffix) const {
    const int64_t x = v.as_int(fmt::format("'{}.{}'", arch, suffix));
    if (x < 0 || x > (1 << 30)) error("'{}.{}' = {} is out of range", arch, suffix, x);
    return static_cast<int>(x);
  }
};

// Llama 3 RoPE scaling is stored by llama.cpp as per-frequency divisors (rope_freqs.weight, head_dim/2
// values) rather than as keys. Recover RopeScaling by assuming Llama 3.x's low/high frequency factors
// and original context, taking the factor from the largest divisor, and checking every divisor.
RopeScaling llama3_scaling_from_freqs(const File& f, const TensorInfo& t, const ModelConfig& c) {
  TensorView v;
  v.name = t.name;
  v.dtype = t.dtype;
  v.shape.assign(t.ne.rbegin(), t.ne.rend());
  v.data = f.tensor_data(t);
  const std::vector<float> div = to_float(v);
  MM_CHECK(static_cast<int64_t>(div.size()) * 2 == c.head_dim, "gguf '{}': rope_freqs.weight has {} values, expected head_dim/2 = {}",
           f.path(), div.size(), c.head_dim / 2);
  RopeScaling s;
  s.type = "llama3";
  s.factor = *std::max_element(div.begin(), div.end());
  MM_CHECK(std::isfinite(s.factor) && s.factor >= 1.0f, "gguf '{}': rope_freqs.weight: largest value {} is not a scaling factor >= 1",
           f.path(), s.factor);
  const double pi = 3.14159265358979323846;
  const double low_wavelen = s.original_max_position / s.low_freq_factor;
  const double high_wavelen = s.original_max_position / s.high_freq_factor;
  for (size_t i = 0; i < div.size(); ++i) {
    const double freq = std::pow(static_cast<double>(c.rope_theta), -2.0 * static_cast<double>(i) / c.head_dim);
    const double wavelen = 2 * pi / freq;
    double want;
    if (wavelen < high_wavelen) {
      want = 1.0;
    } else if (wavelen > low_wavelen) {
      want = s.factor;
    } else {
      const double smooth = (s.original_max_position / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
      want = 1.0 / ((1 - smooth) / s.factor + smooth);
    }
    MM_CHECK(std::fabs(div[i] - want) <= 1e-3 * want,
             "gguf '{}': rope_freqs.weight[{}] = {} does not match Llama 3 RoPE scaling (factor {}, low 1, high 4, "
             "original context 8192) which gives {}; this scaling is not supported",
             f.path(), i, div[i], s.factor, want);
  }
  return s;
}

ModelConfig read_config(const File& f) {
  const Value* arch_v = f.find("general.architecture");
  MM_CHECK(arch_v, "gguf '{}': model config: missing key 'general.architecture'", f.path());
  Keys k{f, std::string(arch_v->as_string("'general.architecture'"))};
  ModelConfig c;
  c.arch = k.arch;
  if (const Value* n = f.find("general.name"); n && n->type == ValueType::string) c.name = n->str;
  c.n_layers = k.required_int("block_count");
  c.hidden = k.required_int("embedding_length");
  c.ffn = k.required_int("feed_forward_length");
  c.n_heads = k.required_int("attention.head_count");
  c.n_kv_heads = k.optional_int("attention.head_count_kv", c.n_heads);
  if (c.n_layers < 1 || c.hidden < 1 || c.n_heads < 1 || c.n_kv_heads < 1 || c.ffn < 1)
    k.error("block_count, embedding_length, feed_forward_length and head counts must be positive");
  if (static_cast<size_t>(c.n_layers) > f.tensors().size())
    k.error("block_count {} is more than the {} tensors in the file", c.n_layers, f.tensors().size());
  if (c.n_heads % c.n_kv_heads != 0) k.error("head_count {} is not a multiple of head_count_kv {}", c.n_heads, c.n_kv_heads);
  if (!k.arch_key("attention.key_length") && c.hidden % c.n_heads != 0)
    k.error("embedding_length {} is not a multiple of head_count {}", c.hidden, c.n_heads);
  c.head_dim = k.optional_int("attention.key_length", c.hidden / c.n_heads);
  if (const int vlen = k.optional_int("attention.value_length", c.head_dim); vlen != c.head_dim)
    k.error("attention.value_length {} differs from key_length {} (not supported)", vlen, c.head_dim);
  if (c.head_dim < 2 || c.head_dim % 2) k.error("head dimension {} must be even and >= 2", c.head_dim);
  if (const int rot = k.optional_int("rope.dimension_count", c.head_dim); rot != c.head_dim)
    k.error("rope.dimension_count {} differs from the head dimension {} (partial rotary is not supported)", rot,
            c.head_dim);
  c.max_ctx = k.optional_int("context_length", c.max_ctx);
  c.rope_theta = k.optional_float("rope.freq_base", c.rope_theta);
  c.rms_eps = k.optional_float("attention.layer_norm_rms_epsilon", c.rms_eps);
  if (!(c.rope_theta > 0) || !(c.rms_eps > 0) || !std::isfinite(c.rope_theta) || !std::isfinite(c.rms_eps))
    k.error("rope.freq_base {} and layer_norm_rms_epsilon {} must be positive", c.rope_theta, c.rms_eps);

  // RoPE scaling
  std::string scaling = "none";
  if (const Value* t = k.arch_key("rope.scaling.type")) scaling = std::string(t->as_string("rope.scaling.type"));
  if (scaling != "none") k.error("rope.scaling.type '{}' is not supported (only none, and llama3 via rope_freqs)", scaling);
  if (const TensorInfo* rf = f.find_tensor("rope_freqs.weight")) c.rope_scaling = llama3_scaling_from_freqs(f, *rf, c);

  // vocab and tying from the tensors
  const TensorInfo* emb = f.find_tensor("token_embd.weight");
  if (!emb) k.error("missing tensor 'token_embd.weight'");
  if (emb->ne.size() != 2 || emb->ne[0] != c.hidden)
    k.error("token_embd.weight has ne [{}], expected [{}, vocab]", fmt::join(emb->ne, ", "), c.hidden);
  if (emb->ne[1] > (1 << 30)) k.error("vocab size {} out of range", emb->ne[1]);
  c.vocab = static_cast<int>(emb->ne[1]);
  if (const Value* vs = k.arch_key("vocab_size"); vs && k.checked_int(*vs, "vocab_size") != c.vocab)
    k.error("vocab_size {} differs from token_embd.weight's {} rows", vs->as_int("vocab_size"), c.vocab);
  c.tied_embeddings = f.find_tensor("output.weight") == nullptr;
  c.qkv_bias = f.find_tensor("blk.0.attn_q.bias") != nullptr;
  return c;
}

TokenizerSpec read_tokenizer(const File& f, const ModelConfig& c) {
  TokenizerSpec s;
  auto key = [&](std::string_view suffix) { return f.find(fmt::format("tokenizer.ggml.{}", suffix)); };
  auto what = [](std::string_view suffix) { return fmt::format("'tokenizer.ggml.{}'", suffix); };
  const Value* model = key("model");
  if (!model) return s;  // no tokenizer in the file: tokens stay empty
  s.model = std::string(model->as_string(what("model")));
  if (const Value* pre = key("pre")) s.pre = std::string(pre->as_string(what("pre")));
  if (const Value* toks = key("tokens")) {
    MM_CHECK(toks->type == ValueType::array && toks->elem == ValueType::string,
             "gguf '{}': tokenizer: 'tokenizer.ggml.tokens' must be an array of strings", f.path());
    s.tokens.assign(toks->strings.begin(), toks->strings.end());
  }
  if (const Value* types = key("token_type")) {
    for (int64_t t : types->int_array(what("token_type"))) s.token_types.push_back(static_cast<int32_t>(t));
    MM_CHECK(s.token_types.size() == s.tokens.size(), "gguf '{}': tokenizer: {} token types for {} tokens", f.path(),
             s.token_types.size(), s.tokens.size());
  }
  if (const Value* merges = key("merges")) {
    MM_CHECK(merges->type == ValueType::array && merges->elem == ValueType::string,
             "gguf '{}': tokenizer: 'tokenizer.ggml.merges' must be an array of strings", f.path());
    s.merges.assign(merges->strings.begin(), merges->strings.end());
  }
  auto id = [&](std::string_view suffix) -> int32_t {
    const Value* v = key(suffix);
    if (!v) return -1;
    const int64_t x = v->as_int(what(suffix));
    MM_CHECK(x >= 0 && x < static_cast<int64_t>(s.tokens.size()), "gguf '{}': tokenizer: {} = {} is not a token id (vocab {})",
             f.path(), what(suffix), x, s.tokens.size());
    return static_cast<int32_t>(x);
  };
  s.bos_id = id("bos_token_id");
  s.eos_id = id("eos_token_id");
  s.pad_id = id("padding_token_id");
  s.unk_id = id("unknown_token_id");
  if (const Value* ab = key("add_bos_token")) s.add_bos = ab->as_bool(what("add_bos_token"));
  MM_CHECK(s.tokens.size() <= static_cast<size_t>(c.vocab), "gguf '{}': tokenizer has {} tokens, more than the {} embedding rows",
           f.path(), s.tokens.size(), c.vocab);
  return s;
}

}  // namespace

ModelSource load_model(std::shared_ptr<File> file) {
  ModelSource m;
  m.path = file->path();
  m.format = "gguf";
  m.config = read_config(*file);
  m.tokenizer = read_tokenizer(*file, m.config);
  auto src = std::make_unique<GgufTensorSource>(file);
  if (m.config.arch == "llama") {
    // Every blk.N.attn_q / attn_k weight and bias in the file (walking the file's tensors rather
    // than 0..n_layers keeps the cost bounded by the file).
    auto ends_with = [](std::string_view s, std::string_view suffix) {
      return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
    };
    for (const TensorInfo& t : file->tensors()) {
      if (t.name.rfind("blk.", 0) != 0) continue;
      if (ends_with(t.name, ".attn_q.weight") || ends_with(t.name, ".attn_q.bias"))
        src->unpermute_rows(t.name, m.config.n_heads);
      else if (ends_with(t.name, ".attn_k.weight") || ends_with(t.name, ".attn_k.bias"))
        src->unpermute_rows(t.name, m.config.n_kv_heads);
    }
  }
  m.tensors = std::move(src);
  return m;
}

ModelSource load_model(const std::string& path) { return load_model(File::open(path)); }

}  // namespace micromix::io::gguf
