// `micromix quantize`: calibrate, allocate MXFP4/6/8 channels per layer, write a quantized
// checkpoint that ppl, generate, eval and inspect load directly.
#include <filesystem>

#include <fmt/format.h>

#include "command.hpp"
#include "micromix/error.hpp"
#include "micromix/quant_checkpoint.hpp"
#include "model_cli.hpp"

namespace micromix::cli {
namespace {

struct QuantizeArgs {
  std::string model, calib, out, scheme = "micromix", scale_rule = "ceil", fp6 = "e3m2";
  int64_t samples = 128, seqlen = 2048, granularity = 128;
  int threads = 0;
  bool force = false, weights_only = false;
};

void run_quantize(const QuantizeArgs& a) {
  const auto rule = mx::parse_scale_rule(a.scale_rule);
  MM_CHECK(rule, "unknown --scale-rule '{}' (expected ocp or ceil)", a.scale_rule);
  const auto fp6 = mx::parse_format("mxfp6_" + a.fp6);
  MM_CHECK(fp6 && (*fp6 == mx::ElemFormat::fp6_e3m2 || *fp6 == mx::ElemFormat::fp6_e2m3),
           "unknown --fp6 '{}' (expected e3m2 or e2m3)", a.fp6);
  MM_CHECK(a.force || !std::filesystem::exists(a.out), "refusing to overwrite '{}' (use --force)", a.out);
  MM_CHECK(a.scheme != "micromix" || !a.calib.empty(), "--scheme micromix needs --calib FILE");
  LoadedModel lm = load_model_for_cli(a.model, a.threads);
  MM_CHECK(lm.source->format != "micromix", "'{}' is already a quantized checkpoint", lm.source->path);
  const ModelConfig& cfg = lm.model->config();
  ModelStats stats;
  if (a.scheme == "micromix") {
    const auto tokens = tokenize_file(*lm.tokenizer, a.calib, "--calib");
    CalibrationOptions co;
    co.samples = a.samples;
    co.seqlen = a.seqlen;
    co.progress = [](int64_t d, int64_t t) { fmt::print(stderr, "\rcalibrating: sample {}/{}", d, t); };
    stats = calibrate(*lm.model, tokens, co);
    fmt::print(stderr, "\n");
  }
  MixedLinearOptions opt;
  opt.rule = *rule;
  opt.quantize_activations = !a.weights_only;
  MicromixOptions mm;
  mm.granularity = a.granularity;
  mm.fp6 = *fp6;
  const QuantPlan plan = make_plan(a.scheme, cfg, &stats, mm, opt);

  fmt::print("| layer | input | K | MXFP4 | MXFP6 | MXFP8 | bits |\n|---:|---|---:|---:|---:|---:|---:|\n");
  for (size_t l = 0; l < plan.layers.size(); ++l)
    for (int i = 0; i < kLinearInputs; ++i) {
      const auto& s = plan.layers[l][i].split;
      fmt::print("| {} | {} | {} | {} | {} | {} | {:.2f} |\n", l, linear_input_name(static_cast<LinearInput>(i)),
                 s.cols(), s.n4, s.n6, s.n8, s.average_bits());
    }
  fmt::print("\nscheme {}, scale rule {}, MXFP6 {}: average {:.3f} bits per weight, {:.3f} per activation "
             "(MAC-weighted, scales included)\n",
             plan.scheme, mx::name(plan.options.rule), mx::info(*fp6).elem, plan.weight_bits(cfg),
             plan.activation_bits(cfg));
  save_quantized_checkpoint(a.out, *lm.source, plan, a.force,
                            [](int d, int t) { fmt::print(stderr, "\rwriting: layer {}/{}", d, t); });
  fmt::print(stderr, "\n");
  fmt::print("wrote {} ({:.1f} MB)\n", a.out, static_cast<double>(std::filesystem::file_size(a.out)) / 1e6);
}

void setup(CLI::App& app) {
  auto args = std::make_shared<QuantizeArgs>();
  auto* c = app.add_subcommand("quantize", "Calibrate and quantize a model into a micromix checkpoint");
  c->add_option("--model,-m", args->model, "GGUF file or Hugging Face directory (default: the fetched default model)");
  c->add_option("--calib", args->calib, "calibration text (UTF-8); needed by --scheme micromix");
  c->add_option("--out,-o", args->out, "checkpoint to write (.safetensors)")->required();
  c->add_option("--scheme", args->scheme, "micromix | mxfp4 | mxfp6 | mxfp8")->capture_default_str();
  c->add_option("--samples", args->samples, "calibration windows")->capture_default_str();
  c->add_option("--seqlen", args->seqlen, "tokens per calibration window (capped by the model's context)")
      ->capture_default_str();
  c->add_option("--granularity", args->granularity, "segment sizes are multiples of this (128 as the paper, or 32)")
      ->capture_default_str();
  c->add_option("--fp6", args->fp6, "MXFP6 element: e3m2 (paper) or e2m3")->capture_default_str();
  c->add_option("--scale-rule", args->scale_rule, "ocp or ceil (ceil measured better: bench/RESULTS.md)")
      ->capture_default_str();
  c->add_flag("--weights-only", args->weights_only, "keep activations in float (weight-only quantization)");
  c->add_flag("--force", args->force, "overwrite --out if it exists");
  c->add_option("--threads,-t", args->threads, "threads (default: all cores)");
  c->callback([args] { run_quantize(*args); });
}

MICROMIX_COMMAND(setup);

}  // namespace
}  // namespace micromix::cli
