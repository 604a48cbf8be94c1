// `micromix inspect`: what a model file holds: config, tokenizer, tensors and totals; for GGUF
// files optionally every metadata key.
#include <filesystem>
#include <map>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "command.hpp"
#include "io/gguf.hpp"  // internal reader, for file-level facts
#include "micromix/error.hpp"
#include "micromix/fetch.hpp"
#include "micromix/model_source.hpp"

namespace micromix::cli {
namespace {

struct InspectArgs {
  std::string model;
  bool metadata = false, no_tensors = false;
};

std::string human_bytes(uint64_t b) {
  if (b >= (uint64_t{1} << 30)) return fmt::format("{:.2f} GiB", static_cast<double>(b) / (1 << 30));
  if (b >= (uint64_t{1} << 20)) return fmt::format("{:.2f} MiB", static_cast<double>(b) / (1 << 20));
  if (b >= 1024) return fmt::format("{:.2f} KiB", static_cast<double>(b) / 1024);
  return fmt::format("{} B", b);
}

// A token's text for display: quoted, control bytes escaped, shortened.
std::string show_token(const TokenizerSpec& t, int32_t id) {
  if (id < 0) return "-";
  std::string s;
  for (char c : t.tokens[static_cast<size_t>(id)].substr(0, 40)) {
    const auto u = static_cast<unsigned char>(c);
    s += u < 0x20 ? fmt::format("\\x{:02x}", u) : std::string(1, c);
  }
  return fmt::format("{} \"{}\"", id, s);
}

void print_config(const ModelSource& m) {
  const ModelConfig& c = m.config;
  fmt::print("config\n");
  auto row = [](std::string_view k, const auto& v) { fmt::print("  {:<16} {}\n", k, v); };
  row("arch", c.arch);
  row("name", c.name.empty() ? "-" : c.name);
  row("layers", c.n_layers);
  row("hidden", c.hidden);
  row("ffn", c.ffn);
  row("heads", c.n_heads);
  row("kv heads", c.n_kv_heads);
  row("head dim", c.head_dim);
  row("vocab", c.vocab);
  row("context", c.max_ctx);
  row("rope theta", fmt::format("{:g}", c.rope_theta));
  row("rms eps", fmt::format("{:g}", c.rms_eps));
  const RopeScaling& r = c.rope_scaling;
  row("rope scaling", r.type == "none" ? std::string("none")
                                       : fmt::format("{} (factor {:g}, low {:g}, high {:g}, original context {})", r.type,
                                                     r.factor, r.low_freq_factor, r.high_freq_factor,
                                                     r.original_max_position));
  row("tied embeddings", c.tied_embeddings ? "yes" : "no");
  row("qkv bias", c.qkv_bias ? "yes" : "no");
}

void print_tokenizer(const TokenizerSpec& t) {
  fmt::print("tokenizer\n");
  if (t.tokens.empty()) {
    fmt::print("  (none in the file)\n");
    return;
  }
  std::map<int32_t, int> by_type;
  for (int32_t ty : t.token_types) ++by_type[ty];
  std::vector<std::string> types;
  for (auto [ty, n] : by_type) types.push_back(fmt::format("type {}: {}", ty, n));
  fmt::print("  {:<16} {}\n", "model", t.model);
  fmt::print("  {:<16} {}\n", "pre-tokenizer", t.pre);
  fmt::print("  {:<16} {}{}\n", "tokens", t.tokens.size(), types.empty() ? "" : fmt::format(" ({})", fmt::join(types, ", ")));
  fmt::print("  {:<16} {}\n", "merges", t.merges.size());
  fmt::print("  {:<16} {}\n", "bos", show_token(t, t.bos_id));
  fmt::print("  {:<16} {}\n", "eos", show_token(t, t.eos_id));
  fmt::print("  {:<16} {}\n", "pad", show_token(t, t.pad_id));
  fmt::print("  {:<16} {}\n", "unk", show_token(t, t.unk_id));
  fmt::print("  {:<16} {}\n", "add bos", t.add_bos ? "yes" : "no");
}

void print_tensors(const ModelSource& m, bool table) {
  const auto names = m.tensors->names();
  size_t width = 4;
  for (const auto& n : names) width = std::max(width, n.size());
  if (table) {
    fmt::print("tensors\n");
    fmt::print("  {:<{}}  {:<5}  {:<16}  {:>12}\n", "name", width, "dtype", "shape", "bytes");
  }
  struct Total {
    int tensors = 0;
    int64_t params = 0;
    uint64_t bytes = 0;
  };
  std::map<std::string, Total> by_dtype;
  Total all;
  for (const auto& n : names) {
    const TensorView& t = m.tensors->get(n);
    const int64_t numel = t.numel();
    if (table)
      fmt::print("  {:<{}}  {:<5}  {:<16}  {:>12}\n", n, width, dtype_name(t.dtype), fmt::format("[{}]", fmt::join(t.shape, ", ")),
                 t.data.size());
    for (Total* x : {&by_dtype[std::string(dtype_name(t.dtype))], &all}) {
      ++x->tensors;
      x->params += numel;
      x->bytes += t.data.size();
    }
  }
  fmt::print("totals\n");
  auto line = [](std::string_view what, const Total& x) {
    fmt::print("  {:<6} {:>5} tensors {:>13} params {:>12} bytes ({}, {:.2f} bits/param)\n", what, x.tensors, x.params,
               x.bytes, human_bytes(x.bytes), x.params ? 8.0 * static_cast<double>(x.bytes) / static_cast<double>(x.params) : 0.0);
  };
  for (const auto& [dt, x] : by_dtype) line(dt, x);
  line("all", all);
}

void inspect(const InspectArgs& a) {
  std::string path = a.model;
  if (path.empty()) {
    path = default_model_path();
    MM_CHECK(std::filesystem::exists(path), "no --model given and the default model is not at {}. HINT: run `micromix fetch`",
             path);
  }
  const ModelSource m = load_model_source(path);
  fmt::print("model  {}\n", m.path);
  if (m.format == "gguf") {
    // Re-open for the file-level facts the ModelSource does not carry (cheap: a second mmap).
    const auto f = io::gguf::File::open(path);
    fmt::print("format GGUF v{}, {} ({} bytes), {} metadata keys, alignment {}, data at {}\n", f->version(),
               human_bytes(f->size()), f->size(), f->metadata().size(), f->alignment(), f->data_offset());
    if (m.config.arch == "llama") fmt::print("       Q/K rows reordered from llama.cpp's layout to Hugging Face order\n");
    if (a.metadata) {
      fmt::print("metadata\n");
      for (const auto& [k, v] : f->metadata())
        fmt::print("  {:<44} {:<6} {}\n", k, io::gguf::value_type_name(v.type), v.summary());
    }
  } else {
    fmt::print("format {}\n", m.format);
  }
  print_config(m);
  print_tokenizer(m.tokenizer);
  print_tensors(m, !a.no_tensors);
}

void setup(CLI::App& app) {
  auto args = std::make_shared<InspectArgs>();
  auto* cmd = app.add_subcommand("inspect", "Show a model's config, tokenizer and tensors (GGUF file, Hugging Face directory or micromix checkpoint)");
  cmd->add_option("--model,-m", args->model, "model path (.gguf or HF directory); default: the fetched default model");
  cmd->add_flag("--metadata", args->metadata, "also list every GGUF metadata key");
  cmd->add_flag("--no-tensors", args->no_tensors, "only the totals, not one line per tensor");
  cmd->callback([args] { inspect(*args); });
}

MICROMIX_COMMAND(setup);

}  // namespace
}  // namespace micromix::cli
