// Causal grouped-query attention over a KV cache (internal).
#pragma once
#include <cstdint>

namespace micromix {

struct AttentionShape {
  int64_t n_heads, n_kv_heads, head_dim;
};

// q: (n, n_heads, head_dim), queries of the positions pos0 .. pos0 + n - 1.
// k, v: (>= pos0 + n, n_kv_heads, head_dim), the cache already holding those positions.
// out: (n, n_heads, head_dim). Query head h reads KV head h / (n_heads / n_kv_heads).
// Query i attends to positions 0 .. pos0 + i, scaled by 1/sqrt(head_dim). Uses all threads.
void attention(const float* q, int64_t n, int64_t pos0, const float* k, const float* v, const AttentionShape& s,
               float* out);

}  // namespace micromix
