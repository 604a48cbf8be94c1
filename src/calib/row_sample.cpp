// Reservoir sample of activation rows (Vitter's algorithm R) with a private xorshift generator, so
// results depend only on the seed and the order rows arrive in.
#include <algorithm>
#include <cstring>

#include "micromix/calib.hpp"
#include "micromix/error.hpp"

namespace micromix::calib {

RowSample::RowSample(int64_t channels, int64_t capacity, uint64_t seed)
    : channels_(channels), capacity_(std::max<int64_t>(capacity, 0)), rng_(seed * 0x9E3779B97F4A7C15ull + 1) {
  MM_CHECK(channels > 0, "calibration: input with {} channels", channels);
}

uint64_t RowSample::next_random() {
  // splitmix64: good enough for picking reservoir slots.
  uint64_t z = (rng_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void RowSample::add_rows(const float* x, int64_t n) {
  if (capacity_ == 0) {
    seen_ += static_cast<uint64_t>(n);
    return;
  }
  const size_t width = static_cast<size_t>(channels_);
  for (int64_t t = 0; t < n; ++t, ++seen_) {
    const float* row = x + static_cast<size_t>(t) * width;
    if (rows() < capacity_) {
      data_.insert(data_.end(), row, row + width);
      continue;
    }
    const uint64_t slot = next_random() % (seen_ + 1);  // keep with probability capacity / (seen + 1)
    if (slot < static_cast<uint64_t>(capacity_)) std::memcpy(data_.data() + slot * width, row, width * sizeof(float));
  }
}

void RowSample::merge(const RowSample& o) {
  MM_CHECK(o.channels_ == channels_, "calibration: merging row samples of {} and {} channels", o.channels_, channels_);
  const size_t width = static_cast<size_t>(channels_);
  const int64_t want = std::min<int64_t>(capacity_, rows() + o.rows());
  std::vector<float> out;
  out.reserve(static_cast<size_t>(want) * width);
  // Draw rows without replacement, each side with probability proportional to the rows it stands for.
  std::vector<int64_t> mine(static_cast<size_t>(rows())), theirs(static_cast<size_t>(o.rows()));
  for (size_t i = 0; i < mine.size(); ++i) mine[i] = static_cast<int64_t>(i);
  for (size_t i = 0; i < theirs.size(); ++i) theirs[i] = static_cast<int64_t>(i);
  double w_mine = static_cast<double>(seen_), w_theirs = static_cast<double>(o.seen_);
  const double per_mine = mine.empty() ? 0 : w_mine / static_cast<double>(mine.size());
  const double per_theirs = theirs.empty() ? 0 : w_theirs / static_cast<double>(theirs.size());
  while (static_cast<int64_t>(out.size() / width) < want) {
    const double u = static_cast<double>(next_random() >> 11) * 0x1.0p-53 * (w_mine + w_theirs);
    const bool take_mine = theirs.empty() || (!mine.empty() && u < w_mine);
    auto& pool = take_mine ? mine : theirs;
    const size_t pick = static_cast<size_t>(next_random() % pool.size());
    const float* src = (take_mine ? data_.data() : o.data_.data()) + static_cast<size_t>(pool[pick]) * width;
    out.insert(out.end(), src, src + width);
    pool[pick] = pool.back();
    pool.pop_back();
    (take_mine ? w_mine : w_theirs) -= take_mine ? per_mine : per_theirs;
  }
  data_ = std::move(out);
  seen_ += o.seen_;
}

}  // namespace micromix::calib
