// Attention as small GEMMs per (head, block of queries): S = Q K^T, causal softmax, O = P V. Tasks
// run in parallel over OpenMP threads; each GEMM is single-threaded (see cpu/kernels.hpp). A block
// of queries only reads the keys its last query may see, so prefill does about half the work of
// a masked full product.
#include "model/attention.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/kernels.hpp"

namespace micromix {

void attention(const float* q, int64_t n, int64_t pos0, const float* k, const float* v, const AttentionShape& s,
               float* out) {
  if (n <= 0) return;
  constexpr int64_t kQueryBlock = 32;
  const int64_t group = s.n_heads / s.n_kv_heads;
  const int64_t q_stride = s.n_heads * s.head_dim, kv_stride = s.n_kv_heads * s.head_dim;
  const int64_t n_blocks = (n + kQueryBlock - 1) / kQueryBlock;
  const int64_t n_tasks = s.n_heads * n_blocks;
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
  const int threads = static_cast<int>(std::min<int64_t>(n_tasks, cpu::num_threads()));

#pragma omp parallel num_threads(threads)
  {
    std::vector<float> scores;  // (rows, keys) of the current task
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < n_tasks; ++task) {
      // Later blocks see more keys: hand them out first for a balanced finish.
      const int64_t b = n_blocks - 1 - task / s.n_heads, h = task % s.n_heads;
      const int64_t i0 = b * kQueryBlock, rows = std::min(kQueryBlock, n - i0);
      const int64_t keys = pos0 + i0 + rows;  // the last query of the block sees them all
      const float* kh = k + (h / group) * s.head_dim;
      const float* vh = v + (h / group) * s.head_dim;
      scores.resize(static_cast<size_t>(rows * keys));
      cpu::gemm_nt(rows, keys, s.head_dim, q + i0 * q_stride + h * s.head_dim, q_stride, kh, kv_stride,
                   scores.data(), keys);
      for (int64_t r = 0; r < rows; ++r) {
        float* sr = scores.data() + r * keys;
        const int64_t visible = pos0 + i0 + r + 1;
        for (int64_t j = 0; j < visible; ++j) sr[j] *= scale;
        cpu::softmax_inplace(sr, visible);
        std::fill(sr + visible, sr + keys, 0.0f);
      }
      cpu::gemm_nn(rows, s.head_dim, keys, scores.data(), keys, vh, kv_stride, out + i0 * q_stride + h * s.head_dim,
                   q_stride);
    }
  }
}

}  // namespace micromix
