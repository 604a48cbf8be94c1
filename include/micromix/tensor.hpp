// Tensors as loaded from checkpoints: a typed, shaped view of bytes owned elsewhere (usually a
// memory map), and a source that finds them by name.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace micromix {

// Storage types a checkpoint can hold. GGUF's block-quantized types keep ggml's names.
enum class DType : uint8_t { f32, f16, bf16, q4_0, q4_1, q8_0, q4_K, q5_K, q6_K, q8_K, u8, i8, i32, i64 };

std::string_view dtype_name(DType t);

struct TensorView {
  std::string name;
  DType dtype = DType::f32;
  // Row-major, outermost first (numpy order). GGUF's ne[] is reversed into this order, so a
  // linear weight is (out_features, in_features) from every source.
  std::vector<int64_t> shape;
  std::span<const uint8_t> data;  // exactly the tensor's bytes

  int64_t numel() const;
};

// Converts any supported dtype to float32 (dequantizing block formats). Throws micromix::Error on
// an unsupported dtype or a byte size that does not match the shape.
std::vector<float> to_float(const TensorView& t);

class TensorSource {
 public:
  virtual ~TensorSource() = default;
  virtual std::vector<std::string> names() const = 0;
  // nullptr when absent.
  virtual const TensorView* find(std::string_view name) const = 0;
  // Throws micromix::Error naming the tensor when absent.
  const TensorView& get(std::string_view name) const;
};

}  // namespace micromix
