// KvCache storage.
#include "micromix/error.hpp"
#include "micromix/model.hpp"

namespace micromix {

KvCache::KvCache(int n_layers, int64_t capacity, int n_kv_heads, int head_dim)
    : capacity_(capacity), n_kv_heads_(n_kv_heads), head_dim_(head_dim) {
  MM_CHECK(n_layers > 0 && n_kv_heads > 0 && head_dim > 0, "KV cache: bad shape ({} layers, {} heads of {})",
           n_layers, n_kv_heads, head_dim);
  MM_CHECK(capacity > 0 && capacity <= (int64_t{1} << 24), "KV cache: capacity {} out of range (1 .. 2^24)",
           capacity);
  const auto per_layer = static_cast<size_t>(capacity * n_kv_heads * head_dim);
  k_.assign(static_cast<size_t>(n_layers), std::vector<float>(per_layer));
  v_.assign(static_cast<size_t>(n_layers), std::vector<float>(per_layer));
}

void KvCache::truncate(int64_t n) {
  MM_CHECK(n >= 0 && n <= length_, "KV cache: cannot truncate {} positions to {}", length_, n);
  length_ = n;
}

}  // namespace micromix
