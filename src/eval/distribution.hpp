// Next-token distribution helpers shared by evaluation and calibration (library-internal).
#pragma once
#include <cstdint>

namespace micromix::eval {

// Row-wise log-softmax in place: x (n, vocab). Threaded over rows.
void log_softmax_rows(float* x, int64_t n, int64_t vocab);
// KL(base || other) in nats for one row of log-probabilities.
double kl_row(const float* base_logp, const float* other_logp, int64_t vocab);

}  // namespace micromix::eval
