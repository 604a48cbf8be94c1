// TensorView helpers: dtype names, element counts, conversion of every stored type to float32.
#include "micromix/tensor.hpp"

#include <cstring>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "io/gguf.hpp"
#include "micromix/bf16.hpp"
#include "micromix/error.hpp"

namespace micromix {

std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "f32";
    case DType::f16: return "f16";
    case DType::bf16: return "bf16";
    case DType::q4_0: return "q4_0";
    case DType::q4_1: return "q4_1";
    case DType::q8_0: return "q8_0";
    case DType::q4_K: return "q4_K";
    case DType::q5_K: return "q5_K";
    case DType::q6_K: return "q6_K";
    case DType::q8_K: return "q8_K";
    case DType::u8: return "u8";
    case DType::i8: return "i8";
    case DType::i32: return "i32";
    case DType::i64: return "i64";
  }
  return "invalid";
}

int64_t TensorView::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) {
    MM_CHECK(d >= 0, "tensor '{}': negative dimension in shape [{}]", name, fmt::join(shape, ", "));
    MM_CHECK(d == 0 || n <= INT64_MAX / d, "tensor '{}': element count of shape [{}] overflows", name,
             fmt::join(shape, ", "));
    n *= d;
  }
  return n;
}

namespace {

template <typename T>
void convert_plain(const uint8_t* src, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    T v;
    std::memcpy(&v, src + i * static_cast<int64_t>(sizeof(T)), sizeof(T));
    out[i] = static_cast<float>(v);
  }
}

}  // namespace

std::vector<float> to_float(const TensorView& t) {
  const int64_t n = t.numel();
  const io::gguf::BlockInfo bi = io::gguf::block_info(t.dtype);
  const int64_t inner = t.shape.empty() ? 1 : t.shape.back();
  MM_CHECK(inner % bi.elems == 0, "to_float: tensor '{}' ({}): innermost dimension {} is not a multiple of the {}-element block",
           t.name, dtype_name(t.dtype), inner, bi.elems);
  const int64_t n_blocks = n / bi.elems;
  MM_CHECK(n_blocks <= INT64_MAX / bi.bytes, "to_float: tensor '{}': byte size overflows", t.name);
  const uint64_t want = static_cast<uint64_t>(n_blocks * bi.bytes);
  MM_CHECK(t.data.size() == want, "to_float: tensor '{}' ({} [{}]) has {} bytes, expected {}", t.name,
           dtype_name(t.dtype), fmt::join(t.shape, ", "), t.data.size(), want);
  std::vector<float> out(static_cast<size_t>(n));
  const uint8_t* p = t.data.data();
  switch (t.dtype) {
    case DType::f32: if (n) std::memcpy(out.data(), p, static_cast<size_t>(n) * 4); break;
    case DType::f16:
      for (int64_t i = 0; i < n; ++i) out[i] = io::gguf::fp16_to_float(static_cast<uint16_t>(p[2 * i] | (p[2 * i + 1] << 8)));
      break;
    case DType::bf16:
      for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_float(static_cast<uint16_t>(p[2 * i] | (p[2 * i + 1] << 8)));
      break;
    case DType::u8: convert_plain<uint8_t>(p, n, out.data()); break;
    case DType::i8: convert_plain<int8_t>(p, n, out.data()); break;
    case DType::i32: convert_plain<int32_t>(p, n, out.data()); break;
    case DType::i64: convert_plain<int64_t>(p, n, out.data()); break;
    default: io::gguf::dequantize_blocks(t.dtype, p, n_blocks, out.data()); break;
  }
  return out;
}

const TensorView& TensorSource::get(std::string_view name) const {
  const TensorView* t = find(name);
  if (!t) fail("tensor '{}' not found in the model", name);
  return *t;
}

}  // namespace micromix
