// MicroMix quantized checkpoints (layout in include/micromix/quant_checkpoint.hpp).
#include "micromix/quant_checkpoint.hpp"

#include <cstring>
#include <fstream>
#include <memory>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "micromix/error.hpp"
#include "micromix/mixed_linear.hpp"
#include "micromix/safetensors.hpp"

namespace micromix {
namespace {

using json = nlohmann::json;

const char* const kLinearNames[] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"};
const LinearInput kLinearInputOf[] = {LinearInput::attn_qkv,    LinearInput::attn_qkv,    LinearInput::attn_qkv,
                                      LinearInput::attn_output, LinearInput::ffn_gate_up, LinearInput::ffn_gate_up,
                                      LinearInput::ffn_down};
const char* const kInputNames[] = {"attn_qkv", "attn_output", "ffn_gate_up", "ffn_down"};
const char* const kSegNames[] = {"mx4", "mx6", "mx8"};

json config_to_json(const ModelConfig& c) {
  return {{"arch", c.arch},
          {"name", c.name},
          {"n_layers", c.n_layers},
          {"hidden", c.hidden},
          {"ffn", c.ffn},
          {"n_heads", c.n_heads},
          {"n_kv_heads", c.n_kv_heads},
          {"head_dim", c.head_dim},
          {"vocab", c.vocab},
          {"max_ctx", c.max_ctx},
          {"rope_theta", c.rope_theta},
          {"rms_eps", c.rms_eps},
          {"rope_scaling",
           {{"type", c.rope_scaling.type},
            {"factor", c.rope_scaling.factor},
            {"low_freq_factor", c.rope_scaling.low_freq_factor},
            {"high_freq_factor", c.rope_scaling.high_freq_factor},
            {"original_max_position", c.rope_scaling.original_max_position}}},
          {"tied_embeddings", c.tied_embeddings},
          {"qkv_bias", c.qkv_bias}};
}

ModelConfig config_from_json(const json& j) {
  ModelConfig c;
  c.arch = j.at("arch").get<std::string>();
  c.name = j.at("name").get<std::string>();
  c.n_layers = j.at("n_layers").get<int>();
  c.hidden = j.at("hidden").get<int>();
  c.ffn = j.at("ffn").get<int>();
  c.n_heads = j.at("n_heads").get<int>();
  c.n_kv_heads = j.at("n_kv_heads").get<int>();
  c.head_dim = j.at("head_dim").get<int>();
  c.vocab = j.at("vocab").get<int>();
  c.max_ctx = j.at("max_ctx").get<int>();
  c.rope_theta = j.at("rope_theta").get<float>();
  c.rms_eps = j.at("rms_eps").get<float>();
  const json& rs = j.at("rope_scaling");
  c.rope_scaling.type = rs.at("type").get<std::string>();
  c.rope_scaling.factor = rs.at("factor").get<float>();
  c.rope_scaling.low_freq_factor = rs.at("low_freq_factor").get<float>();
  c.rope_scaling.high_freq_factor = rs.at("high_freq_factor").get<float>();
  c.rope_scaling.original_max_position = rs.at("original_max_position").get<int>();
  c.tied_embeddings = j.at("tied_embeddings").get<bool>();
  c.qkv_bias = j.at("qkv_bias").get<bool>();
  return c;
}

json tokenizer_to_json(const TokenizerSpec& t) {
  return {{"model", t.model}, {"pre", t.pre}, {"tokens", t.tokens}, {"token_types", t.token_types},
          {"merges", t.merges}, {"bos_id", t.bos_id}, {"eos_id", t.eos_id}, {"pad_id", t.pad_id},
          {"unk_id", t.unk_id}, {"add_bos", t.add_bos}};
}

TokenizerSpec tokenizer_from_json(const json& j) {
  TokenizerSpec t;
  t.model = j.at("model").get<std::string>();
  t.pre = j.at("pre").get<std::string>();
  t.tokens = j.at("tokens").get<std::vector<std::string>>();
  t.token_types = j.at("token_types").get<std::vector<int32_t>>();
  t.merges = j.at("merges").get<std::vector<std::string>>();
  t.bos_id = j.at("bos_id").get<int32_t>();
  t.eos_id = j.at("eos_id").get<int32_t>();
  t.pad_id = j.at("pad_id").get<int32_t>();
  t.unk_id = j.at("unk_id").get<int32_t>();
  t.add_bos = j.at("add_bos").get<bool>();
  return t;
}

std::vector<uint8_t> float_bytes(const std::vector<float>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(float));
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

std::string perm_name(int layer, int input) { return fmt::format("blk.{}.{}.perm", layer, kInputNames[input]); }
std::string seg_name(const std::string& weight, int seg, const char* part) {
  return fmt::format("{}.{}.{}", weight, kSegNames[seg], part);
}

const TensorView& expect(const TensorSource& ts, const std::string& name, DType dt, std::vector<int64_t> shape,
                         const std::string& path) {
  const TensorView* t = ts.find(name);
  MM_CHECK(t, "checkpoint {}: missing tensor '{}'", path, name);
  MM_CHECK(t->dtype == dt && t->shape == shape, "checkpoint {}: tensor '{}' is {} {}, expected {} {}", path, name,
           dtype_name(t->dtype), fmt::join(t->shape, "x"), dtype_name(dt), fmt::join(shape, "x"));
  return *t;
}

}  // namespace

void save_quantized_checkpoint(const std::string& path, const ModelSource& src, const QuantPlan& plan, bool overwrite,
                               const std::function<void(int, int)>& progress) {
  const ModelConfig& c = src.config;
  MM_CHECK(src.tensors, "checkpoint: source {} has no tensors", src.path);
  MM_CHECK(static_cast<int>(plan.layers.size()) == c.n_layers, "checkpoint: plan has {} layers, model {}",
           plan.layers.size(), c.n_layers);
  const TensorSource& ts = *src.tensors;
  std::vector<SafetensorsItem> items;
  auto add_float = [&](const std::string& name) {
    const TensorView& t = ts.get(name);
    items.push_back({name, DType::f32, t.shape, [&t] { return float_bytes(to_float(t)); }});
  };
  add_float("token_embd.weight");
  add_float("output_norm.weight");
  if (ts.find("output.weight")) add_float("output.weight");
  json plan_json = json::array();
  for (int l = 0; l < c.n_layers; ++l) {
    const std::string p = fmt::format("blk.{}.", l);
    add_float(p + "attn_norm.weight");
    add_float(p + "ffn_norm.weight");
    json layer_json = json::array();
    for (int i = 0; i < kLinearInputs; ++i) {
      const InputPlan& ip = plan.layers[static_cast<size_t>(l)][i];
      const int64_t k = static_cast<int64_t>(ip.perm.size());
      items.push_back({perm_name(l, i), DType::i32, {k}, [&ip] {
                         std::vector<uint8_t> b(ip.perm.size() * 4);
                         std::memcpy(b.data(), ip.perm.data(), b.size());
                         return b;
                       }});
      layer_json.push_back({{"n4", ip.split.n4}, {"n6", ip.split.n6}, {"n8", ip.split.n8},
                            {"fp6", std::string(mx::info(ip.split.fp6).name)}});
    }
    plan_json.push_back(layer_json);
    for (int j = 0; j < 7; ++j) {
      const std::string w = p + kLinearNames[j] + ".weight";
      const std::string b = p + kLinearNames[j] + ".bias";
      if (ts.find(b)) add_float(b);
      const TensorView& wt = ts.get(w);
      MM_CHECK(wt.shape.size() == 2, "checkpoint: {} is not a matrix", w);
      const InputPlan& ip = plan.layers[static_cast<size_t>(l)][static_cast<int>(kLinearInputOf[j])];
      // The weight is quantized once, when its first segment is written; the other parts reuse it.
      auto q = std::make_shared<std::unique_ptr<mx::MxMixedMatrix>>();
      auto quantized = [q, &wt, &ip, &plan, l, &progress, c_layers = c.n_layers, last = (j == 6)]() -> const mx::MxMixedMatrix& {
        if (!*q) {
          *q = std::make_unique<mx::MxMixedMatrix>(mx::quantize_mixed(to_float(wt), wt.shape[0], wt.shape[1], ip.perm,
                                                                      ip.split, plan.options.rule, plan.options.rounding));
          if (last && progress) progress(l + 1, c_layers);
        }
        return **q;
      };
      for (int s = 0; s < mx::kSegments; ++s) {
        const int64_t n = ip.split.count(s);
        if (n == 0) continue;
        const int64_t rows = wt.shape[0];
        const auto fmt_s = ip.split.format(s);
        items.push_back({seg_name(w, s, "codes"), DType::u8, {rows, static_cast<int64_t>(mx::packed_row_bytes(fmt_s, n))},
                         [quantized, s] { return quantized().seg[s].codes; }});
        items.push_back({seg_name(w, s, "scales"), DType::u8, {rows, n / mx::kBlock},
                         [quantized, s] { return quantized().seg[s].scales; }});
      }
    }
  }
  const std::map<std::string, std::string> meta = {
      {"format", kCheckpointFormat},
      {"format_version", kCheckpointVersion},
      {"scheme", plan.scheme},
      {"scale_rule", std::string(mx::name(plan.options.rule))},
      {"rounding", std::string(mx::name(plan.options.rounding))},
      {"quantize_activations", plan.options.quantize_activations ? "true" : "false"},
      {"config", config_to_json(c).dump()},
      {"tokenizer", tokenizer_to_json(src.tokenizer).dump()},
      {"plan", plan_json.dump()},
  };
  write_safetensors(path, std::move(items), meta, overwrite);
}

bool is_quantized_checkpoint(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  uint64_t n = 0;
  if (!f.read(reinterpret_cast<char*>(&n), 8) || n == 0 || n > kSafetensorsMaxHeader) return false;
  std::string header(static_cast<size_t>(std::min<uint64_t>(n, 1 << 20)), '\0');
  f.read(header.data(), static_cast<std::streamsize>(header.size()));
  return header.find("\"format\":\"micromix\"") != std::string::npos ||
         header.find("\"format\": \"micromix\"") != std::string::npos;
}

ModelSource load_quantized_checkpoint(const std::string& path, QuantPlan* plan_out) {
  auto st = std::make_unique<SafetensorsSource>(std::vector<std::string>{path});
  const auto& meta = st->metadata();
  auto get = [&](const char* key) -> const std::string& {
    auto it = meta.find(key);
    MM_CHECK(it != meta.end(), "checkpoint {}: metadata has no '{}'", path, key);
    return it->second;
  };
  MM_CHECK(get("format") == kCheckpointFormat, "checkpoint {}: format is '{}', not micromix", path, get("format"));
  MM_CHECK(get("format_version") == kCheckpointVersion,
           "checkpoint {}: format version {} is not supported (this build reads version {})", path,
           get("format_version"), kCheckpointVersion);
  ModelSource src;
  src.path = path;
  src.format = "micromix";
  auto plan = std::make_shared<QuantPlan>();
  try {
    src.config = config_from_json(json::parse(get("config")));
    src.tokenizer = tokenizer_from_json(json::parse(get("tokenizer")));
    const json pj = json::parse(get("plan"));
    plan->scheme = get("scheme");
    const auto rule = mx::parse_scale_rule(get("scale_rule"));
    const auto rounding = mx::parse_rounding(get("rounding"));
    MM_CHECK(rule && rounding, "checkpoint {}: bad scale_rule/rounding in metadata", path);
    plan->options.rule = *rule;
    plan->options.rounding = *rounding;
    plan->options.quantize_activations = get("quantize_activations") == "true";
    MM_CHECK(pj.is_array() && static_cast<int>(pj.size()) == src.config.n_layers,
             "checkpoint {}: plan covers {} layers, config has {}", path, pj.size(), src.config.n_layers);
    plan->layers.resize(pj.size());
    for (int l = 0; l < src.config.n_layers; ++l)
      for (int i = 0; i < kLinearInputs; ++i) {
        const json& e = pj.at(static_cast<size_t>(l)).at(static_cast<size_t>(i));
        InputPlan& ip = plan->layers[static_cast<size_t>(l)][i];
        const auto fp6 = mx::parse_format(e.at("fp6").get<std::string>());
        MM_CHECK(fp6, "checkpoint {}: unknown MXFP6 element in the plan", path);
        ip.split = mx::MixedSplit{e.at("n4").get<int64_t>(), e.at("n6").get<int64_t>(), e.at("n8").get<int64_t>(), *fp6};
        const int64_t k = linear_input_features(src.config, static_cast<LinearInput>(i));
        mx::validate_split(ip.split, k);
        const TensorView& pt = expect(*st, perm_name(l, i), DType::i32, {k}, path);
        ip.perm.resize(static_cast<size_t>(k));
        std::memcpy(ip.perm.data(), pt.data.data(), static_cast<size_t>(k) * 4);
        mx::validate_permutation(ip.perm, k);
      }
  } catch (const json::exception& e) {
    fail("checkpoint {}: bad metadata: {}", path, e.what());
  }
  const TensorSource* tensors = st.get();
  src.tensors = std::move(st);
  src.linear_factory = [plan, tensors, path](LinearSpec&& spec) -> std::unique_ptr<Linear> {
    int layer = -1, j = -1;
    for (int cand = 0; cand < 7 && layer < 0; ++cand) {
      int l = -1;
      char rest[64] = {0};
      if (std::sscanf(spec.name.c_str(), "blk.%d.%63s", &l, rest) == 2 &&
          std::string(rest) == std::string(kLinearNames[cand]) + ".weight")
        layer = l, j = cand;
    }
    if (layer < 0) return make_dense_linear(std::move(spec));  // lm_head
    MM_CHECK(layer < static_cast<int>(plan->layers.size()), "checkpoint {}: no plan for {}", path, spec.name);
    const InputPlan& ip = plan->layers[static_cast<size_t>(layer)][static_cast<int>(kLinearInputOf[j])];
    MM_CHECK(ip.split.cols() == spec.in, "checkpoint {}: {} has {} inputs, the plan splits {}", path, spec.name,
             spec.in, ip.split.cols());
    mx::MxMixedMatrix m;
    m.rows = spec.out;
    m.cols = spec.in;
    m.split = ip.split;
    m.perm = ip.perm;
    for (int s = 0; s < mx::kSegments; ++s) {
      mx::MxMatrix& g = m.seg[s];
      g.format = ip.split.format(s);
      g.rows = spec.out;
      g.cols = ip.split.count(s);
      if (g.cols == 0) continue;
      const TensorView& codes = expect(*tensors, seg_name(spec.name, s, "codes"), DType::u8,
                                       {spec.out, static_cast<int64_t>(g.row_bytes())}, path);
      const TensorView& scales =
          expect(*tensors, seg_name(spec.name, s, "scales"), DType::u8, {spec.out, g.blocks_per_row()}, path);
      g.codes.assign(codes.data.begin(), codes.data.end());
      g.scales.assign(scales.data.begin(), scales.data.end());
    }
    return std::make_unique<MixedLinear>(std::move(m), std::move(spec.bias), plan->options);
  };
  if (plan_out) *plan_out = *plan;
  return src;
}

}  // namespace micromix
