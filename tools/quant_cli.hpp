// Quantization options and steps shared by `micromix quantize` and `micromix eval` (tools only).
#pragma once
#include <span>
#include <string>

#include "micromix/quant_plan.hpp"

namespace micromix::cli {

// --fp6 e3m2 | e2m3 | measured, --granularity G -> MicromixOptions (throws on a bad value).
MicromixOptions parse_micromix_options(const std::string& fp6, int64_t granularity);

// Calibrates with progress on stderr; rows > 0 keeps that many activation rows per input.
ModelStats calibrate_with_progress(Model& model, std::span<const int32_t> tokens, int64_t samples, int64_t seqlen,
                                   int64_t rows);

// Measures every input's group errors with progress on stderr.
ModelErrors measure_errors_with_progress(const Model& model, const ModelStats& stats, int64_t granularity,
                                         const MixedLinearOptions& opt);

// Measures per-input sensitivity on the first `n` calibration tokens (n > 0), progress on stderr.
void measure_sensitivity_with_progress(Model& model, ModelErrors& errors, std::span<const int32_t> calib_tokens,
                                       int64_t n, const MixedLinearOptions& opt);

}  // namespace micromix::cli
