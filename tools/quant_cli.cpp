#include "quant_cli.hpp"

#include <algorithm>
#include <chrono>

#include <fmt/format.h>

#include "micromix/error.hpp"
#include "progress.hpp"

namespace micromix::cli {

MicromixOptions parse_micromix_options(const std::string& fp6, int64_t granularity) {
  MicromixOptions mm;
  MM_CHECK(granularity > 0 && granularity % mx::kBlock == 0, "--granularity {} is not a positive multiple of 32",
           granularity);
  mm.granularity = granularity;
  if (fp6 == "measured") {
    mm.fp6_measured = true;
    return mm;
  }
  const auto f = mx::parse_format("mxfp6_" + fp6);
  MM_CHECK(f && (*f == mx::ElemFormat::fp6_e3m2 || *f == mx::ElemFormat::fp6_e2m3),
           "unknown --fp6 '{}' (expected e3m2, e2m3 or measured)", fp6);
  mm.fp6 = *f;
  return mm;
}

ModelStats calibrate_with_progress(Model& model, std::span<const int32_t> tokens, int64_t samples, int64_t seqlen,
                                   int64_t rows) {
  CalibrationOptions co;
  co.samples = samples;
  co.seqlen = seqlen;
  co.sample_rows = rows;
  Progress progress("calibrating: sample");
  co.progress = [&](int64_t d, int64_t t) { progress.update(d, t); };
  ModelStats stats = calibrate(model, tokens, co);
  progress.finish();
  return stats;
}

ModelErrors measure_errors_with_progress(const Model& model, const ModelStats& stats, int64_t granularity,
                                         const MixedLinearOptions& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  Progress progress(fmt::format("measuring group errors ({} scales): layer", mx::name(opt.rule)));
  ModelErrors e = measure_model_errors(model, stats, granularity, opt, [&](int d, int t) { progress.update(d, t); });
  progress.finish(fmt::format(" ({:.0f} s)", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()));
  return e;
}

void measure_sensitivity_with_progress(Model& model, ModelErrors& errors, std::span<const int32_t> calib_tokens,
                                       int64_t n, const MixedLinearOptions& opt) {
  const auto t0 = std::chrono::steady_clock::now();
  n = std::min<int64_t>({n, static_cast<int64_t>(calib_tokens.size()), model.config().max_ctx});
  Progress progress("measuring sensitivity: input");
  measure_sensitivity(model, errors, calib_tokens.first(static_cast<size_t>(n)), opt,
                      [&](int d, int t) { progress.update(d, t); });
  progress.finish(
      fmt::format(" ({:.0f} s, {} tokens)", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), n));
}

}  // namespace micromix::cli
