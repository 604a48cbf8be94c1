// Streaming calibration statistics of one linear input.
#include <algorithm>
#include <cmath>

#include "micromix/calib.hpp"
#include "micromix/error.hpp"

namespace micromix::calib {

namespace {
// Per-token thresholds as multiples of the token's rowmax (DESIGN.md section 3, step 3).
constexpr double kT4 = 2.0 * (8.0 / 6.0) / 254.0;
constexpr double kT6 = 8.0 * (32.0 / 28.0) / 254.0;
}  // namespace

InputStats::InputStats(int64_t channels, int64_t sample_rows, uint64_t seed)
    : max_mean_abs_(static_cast<size_t>(std::max<int64_t>(channels, 0)), 0.0),
      sample_sum_abs_(static_cast<size_t>(std::max<int64_t>(channels, 0)), 0.0),
      sample_(channels, sample_rows, seed) {}

void InputStats::add_tokens(const float* x, int64_t n_tokens) {
  const int64_t k = channels();
  for (int64_t t = 0; t < n_tokens; ++t) {
    const float* row = x + t * k;
    float rowmax = 0.0f;
    for (int64_t c = 0; c < k; ++c) rowmax = std::max(rowmax, std::fabs(row[c]));
    MM_CHECK(std::isfinite(rowmax), "calibration: non-finite activation in token {} of the sample", sample_tokens_ + t);
    const double t4 = rowmax * kT4, t6 = rowmax * kT6;
    uint64_t below4 = 0, below6 = 0;
    for (int64_t c = 0; c < k; ++c) {
      const double a = std::fabs(row[c]);
      sample_sum_abs_[c] += a;
      below4 += a < t4;
      below6 += a < t6;
    }
    n_below_t4_ += below4;
    n_below_t6_ += below6;
  }
  sample_.add_rows(x, n_tokens);
  sample_tokens_ += n_tokens;
  n_elems_ += static_cast<uint64_t>(n_tokens * k);
}

void InputStats::end_sample() {
  if (sample_tokens_ == 0) return;
  for (size_t c = 0; c < sample_sum_abs_.size(); ++c) {
    max_mean_abs_[c] = std::max(max_mean_abs_[c], sample_sum_abs_[c] / static_cast<double>(sample_tokens_));
    sample_sum_abs_[c] = 0.0;
  }
  sample_tokens_ = 0;
  ++samples_;
}

double InputStats::p4() const { return n_elems_ ? static_cast<double>(n_below_t4_) / static_cast<double>(n_elems_) : 1.0; }
double InputStats::p6() const {
  return n_elems_ ? static_cast<double>(n_below_t6_ - n_below_t4_) / static_cast<double>(n_elems_) : 0.0;
}
double InputStats::p8() const {
  return n_elems_ ? static_cast<double>(n_elems_ - n_below_t6_) / static_cast<double>(n_elems_) : 0.0;
}

void InputStats::merge(const InputStats& o) {
  MM_CHECK(o.channels() == channels(), "calibration: merging stats of {} and {} channels", o.channels(), channels());
  for (size_t c = 0; c < max_mean_abs_.size(); ++c) max_mean_abs_[c] = std::max(max_mean_abs_[c], o.max_mean_abs_[c]);
  samples_ += o.samples_;
  n_elems_ += o.n_elems_;
  n_below_t4_ += o.n_below_t4_;
  n_below_t6_ += o.n_below_t6_;
  sample_.merge(o.sample_);
}

}  // namespace micromix::calib
