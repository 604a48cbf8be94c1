// MicroMix calibration statistics and per-layer channel allocation (DESIGN.md section 3).
//
// For every distinct linear input (q/k/v share one, gate/up share one, o and down their own) we
// keep, per channel, the max over calibration samples of the per-sample mean |x|, and the counts of
// elements under the per-token thresholds
//   T4 = rowmax * 2 * (8/6) / 254      (INT8 error bound expressed in MXFP4 terms)
//   T6 = rowmax * 8 * (32/28) / 254    (same for MXFP6 E3M2)
// where rowmax = max |x| over the token's whole hidden vector. Memory is O(channels), independent
// of the number of tokens.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

namespace micromix::calib {

class InputStats {
 public:
  explicit InputStats(int64_t channels);

  // Adds n_tokens rows of x (n_tokens, channels) belonging to the current sample.
  void add_tokens(const float* x, int64_t n_tokens);
  // Closes the current sample: folds its per-channel mean |x| into the running max.
  void end_sample();

  int64_t channels() const { return static_cast<int64_t>(max_mean_abs_.size()); }
  int64_t samples() const { return samples_; }
  uint64_t elements() const { return n_elems_; }
  // Per-channel max over samples of the per-sample mean |x| (channels).
  const std::vector<double>& max_mean_abs() const { return max_mean_abs_; }
  // Fractions of all calibration elements under T4, in [T4, T6), and at or above T6.
  double p4() const;
  double p6() const;
  double p8() const;

  // Merges another accumulator of the same width (e.g. from another thread).
  void merge(const InputStats& o);

 private:
  std::vector<double> max_mean_abs_, sample_sum_abs_;
  int64_t sample_tokens_ = 0, samples_ = 0;
  uint64_t n_elems_ = 0, n_below_t4_ = 0, n_below_t6_ = 0;
};

struct SegmentCounts {
  int64_t n4 = 0, n6 = 0, n8 = 0;
  int64_t total() const { return n4 + n6 + n8; }
  // MAC-weighted bits per value of this split, scales included (4.25 / 6.25 / 8.25).
  double bits() const;
};

// The paper's counts: n8 = ceil(K*p8/g)*g, n6 = ceil(K*p6/g)*g, n4 = K - n6 - n8, with g the
// segment granularity (a multiple of 32 dividing K). If rounding up overshoots K, n6 then n8 shrink.
SegmentCounts paper_counts(int64_t k, double p6, double p8, int64_t granularity);

// Channels ordered by ascending importance (mean |x|; ties by channel index): the first n4 go to
// MXFP4, the next n6 to MXFP6, the last n8 to MXFP8. perm[j] = source channel of position j.
std::vector<int32_t> rank_channels(std::span<const double> importance);

// Throws micromix::Error unless perm is a permutation of 0..k-1.
void check_permutation(std::span<const int32_t> perm, int64_t k);

}  // namespace micromix::calib
