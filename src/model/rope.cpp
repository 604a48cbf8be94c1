// RoPE frequencies (with Llama-3 scaling), cos/sin tables and the rotate-half rotation.
#include "model/rope.hpp"

#include <cmath>
#include <numbers>

#include "micromix/error.hpp"

namespace micromix {

std::vector<double> rope_inv_freq(int head_dim, double theta, const RopeScaling& scaling) {
  MM_CHECK(head_dim > 0 && head_dim % 2 == 0, "RoPE: head_dim {} is not a positive even number", head_dim);
  MM_CHECK(theta > 1.0, "RoPE: rope_theta {} must be > 1", theta);
  const int half = head_dim / 2;
  std::vector<double> f(static_cast<size_t>(half));
  for (int i = 0; i < half; ++i) f[static_cast<size_t>(i)] = std::pow(theta, -2.0 * i / head_dim);
  if (scaling.type == "none" || scaling.type.empty()) return f;
  MM_CHECK(scaling.type == "llama3", "RoPE: unsupported rope_scaling type '{}' (expected none or llama3)",
           scaling.type);
  const double factor = scaling.factor, lo = scaling.low_freq_factor, hi = scaling.high_freq_factor;
  const double old_ctx = scaling.original_max_position;
  MM_CHECK(factor > 0 && hi > lo && old_ctx > 0, "RoPE: bad llama3 scaling (factor {}, low {}, high {}, ctx {})",
           factor, lo, hi, old_ctx);
  const double low_freq_wavelen = old_ctx / lo, high_freq_wavelen = old_ctx / hi;
  for (double& x : f) {
    const double wavelen = 2.0 * std::numbers::pi / x;
    if (wavelen < high_freq_wavelen) continue;  // high frequencies: unchanged
    if (wavelen > low_freq_wavelen) {           // low frequencies: slowed by factor
      x /= factor;
      continue;
    }
    const double smooth = (old_ctx / wavelen - lo) / (hi - lo);  // in between: interpolate
    x = (1.0 - smooth) * x / factor + smooth * x;
  }
  return f;
}

RopeTable rope_table(const std::vector<double>& inv_freq, int64_t pos0, int64_t n) {
  RopeTable t;
  t.half = static_cast<int64_t>(inv_freq.size());
  t.cos.resize(static_cast<size_t>(n * t.half));
  t.sin.resize(t.cos.size());
  for (int64_t p = 0; p < n; ++p)
    for (int64_t i = 0; i < t.half; ++i) {
      const double a = static_cast<double>(pos0 + p) * inv_freq[static_cast<size_t>(i)];
      t.cos[static_cast<size_t>(p * t.half + i)] = static_cast<float>(std::cos(a));
      t.sin[static_cast<size_t>(p * t.half + i)] = static_cast<float>(std::sin(a));
    }
  return t;
}

void apply_rope(float* x, int64_t n, int64_t n_heads, int64_t head_dim, int64_t row_stride, const RopeTable& table) {
  const int64_t half = head_dim / 2;
#pragma omp parallel for if (n * n_heads * head_dim >= (1 << 15)) schedule(static)
  for (int64_t t = 0; t < n; ++t) {
    const float* c = table.cos.data() + t * half;
    const float* s = table.sin.data() + t * half;
    for (int64_t h = 0; h < n_heads; ++h) {
      float* a = x + t * row_stride + h * head_dim;
      float* b = a + half;
#pragma omp simd
      for (int64_t i = 0; i < half; ++i) {
        const float x0 = a[i], x1 = b[i];
        a[i] = x0 * c[i] - x1 * s[i];
        b[i] = x1 * c[i] + x0 * s[i];
      }
    }
  }
}

}  // namespace micromix
