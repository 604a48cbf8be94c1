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
#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "micromix/mx_mixed.hpp"

namespace micromix::calib {

// A uniform random sample of at most `capacity` rows out of all rows ever added (reservoir
// sampling), for measuring output errors on real activations. Memory: capacity * channels floats.
class RowSample {
 public:
  RowSample(int64_t channels, int64_t capacity, uint64_t seed);
  void add_rows(const float* x, int64_t n);
  int64_t channels() const { return channels_; }
  int64_t rows() const { return static_cast<int64_t>(data_.size()) / channels_; }
  uint64_t seen() const { return seen_; }
  const std::vector<float>& data() const { return data_; }  // (rows, channels)
  // Merges another sample of the same width: the result is a uniform sample of both streams.
  void merge(const RowSample& o);

 private:
  int64_t channels_, capacity_;
  uint64_t seen_ = 0, rng_;
  std::vector<float> data_;
  uint64_t next_random();
};

class InputStats {
 public:
  // sample_rows > 0 also keeps a RowSample of that many activation rows (for measured errors).
  explicit InputStats(int64_t channels, int64_t sample_rows = 0, uint64_t seed = 0);

  // Adds n_tokens rows of x (n_tokens, channels) belonging to the current sample.
  void add_tokens(const float* x, int64_t n_tokens);
  // Closes the current sample: folds its per-channel mean |x| into the running max.
  void end_sample();

  int64_t channels() const { return static_cast<int64_t>(max_mean_abs_.size()); }
  int64_t samples() const { return samples_; }
  uint64_t elements() const { return n_elems_; }
  // Per-channel max over samples of the per-sample mean |x| (channels).
  const std::vector<double>& max_mean_abs() const { return max_mean_abs_; }
  const RowSample& sample() const { return sample_; }
  // Fractions of all calibration elements under T4, in [T4, T6), and at or above T6.
  double p4() const;
  double p6() const;
  double p8() const;

  // Merges another accumulator of the same width (e.g. from another thread).
  void merge(const InputStats& o);

 private:
  std::vector<double> max_mean_abs_, sample_sum_abs_;
  RowSample sample_;
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

// ---- budgeted allocation (beyond the paper) ----------------------------------------------------
// Channels ranked by importance are cut into groups of `group` channels (a multiple of 32, so every
// MX block lies inside one group and a group quantizes the same wherever its segment puts it).
// For each group and candidate format we measure, on sampled activation rows X (T, K) and the
// weights W (N, K) of the linears the input feeds, the squared output error of that group alone:
//   err[i][f] = || X_G W_G^T - Q_f(X_G) Q_f(W_G)^T ||_F^2       (G = channels of group i)
// Group errors add up to the layer's error when the groups' errors are uncorrelated.
inline constexpr std::array<mx::ElemFormat, 4> kGroupFormats = {
    mx::ElemFormat::fp4_e2m1, mx::ElemFormat::fp6_e2m3, mx::ElemFormat::fp6_e3m2, mx::ElemFormat::fp8_e4m3};

struct GroupErrors {
  int64_t group = 0;                       // channels per group
  int64_t out_features = 0;                // N: MACs per channel and token
  std::vector<int32_t> order;              // (K) channels by ascending importance
  std::vector<std::array<double, 4>> err;  // (K / group) x kGroupFormats
  double reference = 0;                    // || X W^T ||_F^2, the layer output's energy
  // Model-output cost of one unit of relative output error at this input (1 unless measured):
  // the allocation minimizes sum over inputs of sensitivity * err / reference.
  double sensitivity = 1.0;
  int64_t channels() const { return static_cast<int64_t>(order.size()); }
};

// x: (rows, k) sampled activations, w: (n, k) weights, order: a permutation of 0..k-1. With
// quantize_activations false, X is used unquantized (weight-only quantization). Threaded.
GroupErrors measure_group_errors(std::span<const float> x, int64_t rows, std::span<const float> w, int64_t n,
                                 int64_t k, std::vector<int32_t> order, int64_t group, mx::ScaleRule rule,
                                 mx::Rounding r, bool quantize_activations);

// How each input's MXFP6 element is chosen: fixed, or per input by the smaller summed error.
enum class Fp6Choice { e3m2, e2m3, measured };

struct Allocation {
  std::vector<int32_t> perm;  // (K) permuted position -> source channel
  mx::MixedSplit split;
};

// Chooses a format for every group of every input so that the MAC-weighted bits per value (scales
// included) stay <= target_bits while the sum over inputs of sensitivity * err / reference (each
// layer's relative output error, weighted by what it costs at the model output) is smallest: greedy on the convex hull of each group's (bits, error)
// points, the steps that buy the most error per bit first. Segments list the groups in ranked
// order. Throws micromix::Error if target_bits is below all-MXFP4 (4.25).
std::vector<Allocation> allocate_budget(std::span<const GroupErrors> inputs, double target_bits, Fp6Choice fp6);
// The MXFP6 element an input gets under `fp6` (by summed group error for Fp6Choice::measured).
mx::ElemFormat choose_fp6(const GroupErrors& e, Fp6Choice fp6);

}  // namespace micromix::calib
