// `micromix eval`: calibrate on one text, quantize with several schemes, evaluate all of them
// against the float baseline on another text, print one table (markdown, optionally JSON).
#include <chrono>
#include <cstdio>
#include <fstream>
#include <cmath>
#include <memory>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "command.hpp"
#include "progress.hpp"
#include "micromix/error.hpp"
#include "micromix/eval.hpp"
#include "micromix/fetch.hpp"
#include "micromix/quant_plan.hpp"
#include "model_cli.hpp"
#include "quant_cli.hpp"

namespace micromix::cli {
namespace {

struct EvalArgs {
  std::string model, calib, text, json, schemes = "mxfp8,mxfp6,mxfp4,micromix,micromix@4.5,micromix@5,micromix@5.5",
                                       scale_rule = "ceil", fp6 = "measured";
  int64_t ctx = 512, max_tokens = 4096, samples = 8, seqlen = 512, granularity = 128, error_rows = 256,
          sensitivity_tokens = 256;
  int threads = 0;
};

struct SchemeRun {
  std::string name;
  QuantPlan plan;
  std::unique_ptr<Model> model;
};

void run_eval(const EvalArgs& a) {
  const auto t0 = std::chrono::steady_clock::now();
  LoadedModel lm = load_model_for_cli(a.model, a.threads);
  const ModelConfig& cfg = lm.model->config();
  const auto calib_tokens = tokenize_file(*lm.tokenizer, a.calib, "--calib");
  const auto eval_tokens = tokenize_file(*lm.tokenizer, a.text, "--text");
  fmt::print(stderr, "calibration text: {} tokens; evaluation text: {} tokens (scoring up to {})\n",
             calib_tokens.size(), eval_tokens.size(), a.max_tokens);

  std::vector<mx::ScaleRule> rules;
  if (a.scale_rule == "both") rules = {mx::ScaleRule::ocp, mx::ScaleRule::ceil};
  else if (auto r = mx::parse_scale_rule(a.scale_rule)) rules = {*r};
  else fail("unknown --scale-rule '{}' (expected ocp, ceil or both)", a.scale_rule);
  const MicromixOptions mm = parse_micromix_options(a.fp6, a.granularity);

  // Calibration (only when a scheme needs it), with activation rows when a scheme measures errors.
  std::vector<std::string> names;
  std::stringstream ss(a.schemes);
  for (std::string s; std::getline(ss, s, ',');)
    if (!s.empty()) names.push_back(s);
  MM_CHECK(!names.empty(), "--schemes is empty");
  bool need_stats = false, need_errors = false;
  for (const auto& n : names) {
    need_stats |= n.rfind("micromix", 0) == 0;
    need_errors |= scheme_needs_errors(n, mm);
  }
  MM_CHECK(!need_errors || a.error_rows > 0, "--error-rows must be > 0 for {}", a.schemes);
  ModelStats stats;
  if (need_stats)
    stats = calibrate_with_progress(*lm.model, calib_tokens, a.samples, a.seqlen, need_errors ? a.error_rows : 0);

  std::vector<SchemeRun> runs;
  for (mx::ScaleRule rule : rules) {
    MixedLinearOptions opt;
    opt.rule = rule;
    ModelErrors errors;  // per scale rule: the quantizer's rule changes every group's error
    if (need_errors) {
      errors = measure_errors_with_progress(*lm.model, stats, a.granularity, opt);
      if (a.sensitivity_tokens > 0) measure_sensitivity_with_progress(*lm.model, errors, calib_tokens, a.sensitivity_tokens, opt);
    }
    for (const auto& n : names) {
      SchemeRun run;
      run.plan = make_plan(n, cfg, &stats, mm, opt, &errors);
      run.name = n + (rules.size() > 1 ? "/" + std::string(mx::name(rule)) : "");
      fmt::print(stderr, "quantizing: {} ({:.2f} bits)\n", run.name, run.plan.weight_bits(cfg));
      run.model = std::make_unique<Model>(Model::load(*lm.source, make_plan_factory(run.plan)));
      runs.push_back(std::move(run));
    }
  }

  std::vector<std::pair<std::string, const Model*>> models;
  for (const auto& r : runs) models.emplace_back(r.name, r.model.get());
  Progress progress("evaluating: window");
  const auto rows = compare_models(*lm.model, models, eval_tokens, a.ctx, a.max_tokens,
                                   [&](int64_t d, int64_t t) { progress.update(d, t); });
  progress.finish();

  // ---- table ----
  const double base_ppl = rows[0].ppl;
  // The all-MXFP4 row with the same scale rule suffix ("/ocp", "/ceil" or none), if evaluated.
  auto fp4_ppl_for = [&](const std::string& name) -> double {
    const auto slash = name.find('/');
    const std::string want = "mxfp4" + (slash == std::string::npos ? std::string() : name.substr(slash));
    for (const auto& r : rows)
      if (r.name == want) return r.ppl;
    return 0.0;
  };
  // Percent of MXFP4's PPL gap a micromix row closes; NaN for other rows or without an MXFP4 row.
  auto gap_closed = [&](const std::string& name, double ppl) -> double {
    const double fp4 = fp4_ppl_for(name);
    if (name.rfind("micromix", 0) != 0 || !(fp4 > base_ppl)) return std::nan("");
    return 100.0 * (fp4 - ppl) / (fp4 - base_ppl);
  };
  fmt::print("| scheme | W bits | A bits | PPL | dPPL | KL vs base | top-1 agree | MXFP4 gap closed |\n");
  fmt::print("|---|---:|---:|---:|---:|---:|---:|---:|\n");
  nlohmann::json j = nlohmann::json::array();
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    const double wb = i == 0 ? 32.0 : runs[i - 1].plan.weight_bits(cfg);
    const double ab = i == 0 ? 32.0 : runs[i - 1].plan.activation_bits(cfg);
    const double closed_pct = i == 0 ? std::nan("") : gap_closed(r.name, r.ppl);
    const bool closed = !std::isnan(closed_pct);
    fmt::print("| {} | {:.2f} | {:.2f} | {:.4f} | {:+.4f} | {:.5f} | {:.4f} | {} |\n", r.name, wb, ab, r.ppl,
               r.ppl - base_ppl, r.kl, r.top1, closed ? fmt::format("{:.1f}%", closed_pct) : std::string());
    nlohmann::json row = {{"scheme", r.name}, {"weight_bits", wb}, {"activation_bits", ab}, {"ppl", r.ppl},
                          {"delta_ppl", r.ppl - base_ppl}, {"mean_nll", r.mean_nll}, {"kl", r.kl}, {"top1", r.top1},
                          {"tokens_scored", r.predicted}};
    if (closed) row["mxfp4_gap_closed_percent"] = closed_pct;
    j.push_back(std::move(row));
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  fmt::print("\nmodel {}, ctx {}, {} tokens scored per scheme, calibration {} x {} tokens, granularity {}, fp6 {}, "
             "{} error rows, sensitivity on {} tokens, {:.0f} s\n",
             lm.source->path, a.ctx, rows[0].predicted, a.samples, a.seqlen, a.granularity, a.fp6, a.error_rows,
             a.sensitivity_tokens, secs);
  if (!a.json.empty()) {
    nlohmann::json out = {{"model", lm.source->path}, {"ctx", a.ctx}, {"calib", a.calib}, {"text", a.text},
                          {"samples", a.samples}, {"seqlen", a.seqlen}, {"granularity", a.granularity}, {"fp6", a.fp6},
                          {"error_rows", a.error_rows}, {"sensitivity_tokens", a.sensitivity_tokens}, {"rows", j}};
    write_text_file_new(a.json, out.dump(2) + "\n");
  }
}

void setup(CLI::App& app) {
  auto args = std::make_shared<EvalArgs>();
  auto* c = app.add_subcommand("eval", "Quantize a model with several schemes and compare them to the float baseline");
  c->add_option("--model,-m", args->model, "GGUF file or Hugging Face directory (default: the fetched default model)");
  c->add_option("--calib", args->calib, "calibration text (UTF-8)")->required();
  c->add_option("--text", args->text, "evaluation text (UTF-8), never the calibration text")->required();
  c->add_option("--ctx", args->ctx, "window length in tokens")->capture_default_str();
  c->add_option("--max-tokens", args->max_tokens, "score at most this many tokens (<= 0: all)")->capture_default_str();
  c->add_option("--samples", args->samples, "calibration windows")->capture_default_str();
  c->add_option("--seqlen", args->seqlen, "tokens per calibration window")->capture_default_str();
  c->add_option("--schemes", args->schemes,
                 "comma-separated: mxfp8, mxfp6, mxfp4, micromix (paper thresholds), micromix@BITS (budgeted to "
                 "BITS average bits per value, MAC-weighted, scales included)")
      ->capture_default_str();
  c->add_option("--scale-rule", args->scale_rule,
                 "ocp, ceil or both (ceil measured better on every scheme: bench/RESULTS.md)")
      ->capture_default_str();
  c->add_option("--fp6", args->fp6, "MXFP6 element of MicroMix segments: e3m2 (paper), e2m3, or measured: per input, the one with the "
                 "smaller measured output error (measured better: bench/RESULTS.md); all-MXFP6 uses E3M2 then")
      ->capture_default_str();
  c->add_option("--error-rows", args->error_rows,
                 "activation rows sampled per input to measure the output errors micromix@BITS allocates by")
      ->capture_default_str();
  c->add_option("--granularity", args->granularity, "MicroMix segment granularity (multiple of 32)")->capture_default_str();
  c->add_option("--sensitivity-tokens", args->sensitivity_tokens,
                 "weight each input's measured error by its cost at the model output, measured on this many "
                 "calibration tokens (one forward pass per input; 0: off, every input weighs the same)")
      ->capture_default_str();
  c->add_option("--json", args->json, "also write the table as JSON to this new file");
  c->add_option("--threads,-t", args->threads, "threads (default: all cores)");
  c->callback([args] { run_eval(*args); });
}

MICROMIX_COMMAND(setup);

}  // namespace
}  // namespace micromix::cli
