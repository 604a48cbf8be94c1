// Rotary position embedding, rotate-half ("NEOX") layout as in Hugging Face: within each head the
// pair (i, i + head_dim/2) is rotated by pos * inv_freq[i].
#pragma once
#include <cstdint>
#include <vector>

#include "micromix/model_source.hpp"

namespace micromix {

// inv_freq[i] = theta^(-2i/head_dim), i < head_dim/2, with Llama-3 frequency scaling applied when
// scaling.type == "llama3" (long wavelengths divided by factor, a smooth ramp in between).
std::vector<double> rope_inv_freq(int head_dim, double theta, const RopeScaling& scaling);

// cos/sin for positions pos0 .. pos0 + n - 1: each (n, head_dim / 2).
struct RopeTable {
  std::vector<float> cos, sin;
  int64_t half = 0;
};
RopeTable rope_table(const std::vector<double>& inv_freq, int64_t pos0, int64_t n);

// Rotates x in place: x is (n, n_heads, head_dim) with row stride `row_stride` floats between
// tokens; token t uses row t of the table.
void apply_rope(float* x, int64_t n, int64_t n_heads, int64_t head_dim, int64_t row_stride, const RopeTable& table);

}  // namespace micromix
