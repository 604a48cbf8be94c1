// `micromix quantize`: calibrate, allocate MXFP4/6/8 channels per layer, write a quantized
// checkpoint that ppl, generate, eval and inspect load directly.
#include <filesystem>

#include <fmt/format.h>

#include "command.hpp"
#include "progress.hpp"
#include "micromix/error.hpp"
#include "micromix/quant_checkpoint.hpp"
#include "model_cli.hpp"
#include "quant_cli.hpp"

namespace micromix::cli {
namespace {

struct QuantizeArgs {
  std::string model, calib, out, scheme = "micromix", scale_rule = "ceil", fp6 = "measured";
  int64_t samples = 128, seqlen = 2048, granularity = 128, error_rows = 256, sensitivity_tokens = 256;
  double target_bits = 0;
  int threads = 0;
  bool force = false, weights_only = false;
};

void run_quantize(const QuantizeArgs& a_in) {
  QuantizeArgs a = a_in;
  const auto rule = mx::parse_scale_rule(a.scale_rule);
  MM_CHECK(rule, "unknown --scale-rule '{}' (expected ocp or ceil)", a.scale_rule);
  const MicromixOptions mm = parse_micromix_options(a.fp6, a.granularity);
  if (a.target_bits != 0) {
    MM_CHECK(a.scheme == "micromix", "--target-bits goes with --scheme micromix (got --scheme {})", a.scheme);
    a.scheme = fmt::format("micromix@{:g}", a.target_bits);
  }
  scheme_target_bits(a.scheme);  // rejects a malformed micromix@BITS before any work
  MM_CHECK(a.scheme == "micromix" || a.scheme.rfind("micromix@", 0) == 0 || a.scheme == "mxfp4" ||
               a.scheme == "mxfp6" || a.scheme == "mxfp8",
           "unknown --scheme '{}' (expected micromix, micromix@BITS, mxfp4, mxfp6 or mxfp8)", a.scheme);
  const bool is_micromix = a.scheme.rfind("micromix", 0) == 0;
  MM_CHECK(a.force || !std::filesystem::exists(a.out), "refusing to overwrite '{}' (use --force)", a.out);
  MM_CHECK(!is_micromix || !a.calib.empty(), "--scheme {} needs --calib FILE", a.scheme);
  LoadedModel lm = load_model_for_cli(a.model, a.threads);
  MM_CHECK(lm.source->format != "micromix", "'{}' is already a quantized checkpoint", lm.source->path);
  const ModelConfig& cfg = lm.model->config();
  MixedLinearOptions opt;
  opt.rule = *rule;
  opt.quantize_activations = !a.weights_only;
  const bool need_errors = scheme_needs_errors(a.scheme, mm);
  MM_CHECK(!need_errors || a.error_rows > 0, "--error-rows must be > 0 for --scheme {}", a.scheme);
  ModelStats stats;
  ModelErrors errors;
  if (is_micromix) {
    const auto tokens = tokenize_file(*lm.tokenizer, a.calib, "--calib");
    stats = calibrate_with_progress(*lm.model, tokens, a.samples, a.seqlen, need_errors ? a.error_rows : 0);
    if (need_errors) {
      errors = measure_errors_with_progress(*lm.model, stats, a.granularity, opt);
      if (a.sensitivity_tokens > 0 && scheme_target_bits(a.scheme))
        measure_sensitivity_with_progress(*lm.model, errors, tokens, a.sensitivity_tokens, opt);
    }
  }
  const QuantPlan plan = make_plan(a.scheme, cfg, &stats, mm, opt, &errors);

  fmt::print("| layer | input | K | MXFP4 | MXFP6 | MXFP8 | FP6 element | bits |\n|---:|---|---:|---:|---:|---:|---|---:|\n");
  for (size_t l = 0; l < plan.layers.size(); ++l)
    for (int i = 0; i < kLinearInputs; ++i) {
      const auto& s = plan.layers[l][i].split;
      fmt::print("| {} | {} | {} | {} | {} | {} | {} | {:.2f} |\n", l, linear_input_name(static_cast<LinearInput>(i)),
                 s.cols(), s.n4, s.n6, s.n8, mx::info(s.fp6).elem, s.average_bits());
    }
  fmt::print("\nscheme {}, scale rule {}, MXFP6 {}: average {:.3f} bits per weight, {:.3f} per activation "
             "(MAC-weighted, scales included)\n",
             plan.scheme, mx::name(plan.options.rule), a.fp6, plan.weight_bits(cfg), plan.activation_bits(cfg));
  Progress progress("writing: layer");
  save_quantized_checkpoint(a.out, *lm.source, plan, a.force, [&](int d, int t) { progress.update(d, t); });
  progress.finish();
  fmt::print("wrote {} ({:.1f} MB)\n", a.out, static_cast<double>(std::filesystem::file_size(a.out)) / 1e6);
}

void setup(CLI::App& app) {
  auto args = std::make_shared<QuantizeArgs>();
  auto* c = app.add_subcommand("quantize", "Calibrate and quantize a model into a micromix checkpoint");
  c->add_option("--model,-m", args->model, "GGUF file or Hugging Face directory (default: the fetched default model)");
  c->add_option("--calib", args->calib, "calibration text (UTF-8); needed by --scheme micromix");
  c->add_option("--out,-o", args->out, "checkpoint to write (.safetensors)")->required();
  c->add_option("--scheme", args->scheme,
                 "micromix (paper thresholds) | micromix@BITS (budgeted) | mxfp4 | mxfp6 | mxfp8")
      ->capture_default_str();
  c->add_option("--target-bits", args->target_bits,
                 "MicroMix with this average bits per value (MAC-weighted over the model, scales included, >= 4.25): "
                 "channels go where measured output error drops most per bit; same as --scheme micromix@BITS");
  c->add_option("--error-rows", args->error_rows,
                 "activation rows sampled per input to measure output errors (--target-bits, --fp6 measured)")
      ->capture_default_str();
  c->add_option("--samples", args->samples, "calibration windows")->capture_default_str();
  c->add_option("--seqlen", args->seqlen, "tokens per calibration window (capped by the model's context)")
      ->capture_default_str();
  c->add_option("--sensitivity-tokens", args->sensitivity_tokens,
                 "with --target-bits: weight each input's measured error by its cost at the model output, measured "
                 "on this many calibration tokens (one forward pass per input; 0: off, every input weighs the same)")
      ->capture_default_str();
  c->add_option("--granularity", args->granularity, "segment sizes are multiples of this (128 as the paper, or 32)")
      ->capture_default_str();
  c->add_option("--fp6", args->fp6, "MXFP6 element of MicroMix segments: e3m2 (paper), e2m3, or measured: per input, the one with the "
                 "smaller measured output error (measured better: bench/RESULTS.md); all-MXFP6 uses E3M2 then")
      ->capture_default_str();
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
