#include "eval/distribution.hpp"

#include <algorithm>
#include <cmath>

namespace micromix::eval {

void log_softmax_rows(float* x, int64_t n, int64_t vocab) {
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < n; ++r) {
    float* row = x + r * vocab;
    const float mx = *std::max_element(row, row + vocab);
    double sum = 0;
    for (int64_t i = 0; i < vocab; ++i) sum += std::exp(static_cast<double>(row[i] - mx));
    const float lse = mx + static_cast<float>(std::log(sum));
    for (int64_t i = 0; i < vocab; ++i) row[i] -= lse;
  }
}

double kl_row(const float* b, const float* o, int64_t vocab) {
  double k = 0;
  for (int64_t i = 0; i < vocab; ++i) k += std::exp(static_cast<double>(b[i])) * (b[i] - o[i]);
  return k;
}

}  // namespace micromix::eval
