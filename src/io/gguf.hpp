// GGUF v3 (llama.cpp's single-file model format), internal to micromix:
//  - ggml's storage types: block geometry and dequantizers to float32 (gguf_dequant.cpp);
//  - a hardened reader over a read-only memory map or a caller's buffer (gguf.cpp);
//  - the GGUF -> ModelSource adapter (gguf_model.cpp).
//
// File layout (all little-endian):
//   "GGUF" u32 version u64 n_tensors u64 n_kv
//   n_kv x { string key, u32 value_type, value }        string = u64 length + bytes (no NUL)
//   n_tensors x { string name, u32 n_dims, u64 ne[n_dims], u32 ggml_type, u64 offset }
//   padding to general.alignment (default 32), then the data section; tensor offsets are
//   relative to it and aligned. ne[0] is the innermost (contiguous) dimension.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "micromix/model_source.hpp"
#include "micromix/tensor.hpp"

namespace micromix::io::gguf {

// ---- storage types ------------------------------------------------------------------------------

// Elements per block and bytes per block of a dtype (plain types: block of 1).
struct BlockInfo {
  int64_t elems;
  int64_t bytes;
};
BlockInfo block_info(DType t);

// ggml's type ids (ggml.h, enum ggml_type) for the types micromix reads.
inline constexpr uint32_t kGgmlF32 = 0, kGgmlF16 = 1, kGgmlQ4_0 = 2, kGgmlQ4_1 = 3, kGgmlQ8_0 = 8,
                          kGgmlQ4_K = 12, kGgmlQ5_K = 13, kGgmlQ6_K = 14, kGgmlQ8_K = 15, kGgmlI8 = 24,
                          kGgmlI32 = 26, kGgmlI64 = 27, kGgmlBF16 = 30;
// ggml type id -> DType; nullopt for ids micromix does not read.
std::optional<DType> dtype_from_ggml(uint32_t ggml_type);
uint32_t ggml_from_dtype(DType t);
// ggml's name of a type id ("q5_0", "iq2_xxs", ...) for error messages; "" when unknown.
std::string_view ggml_type_name(uint32_t ggml_type);

float fp16_to_float(uint16_t h);

// Dequantizes n_blocks consecutive blocks of a block type (q4_0, q4_1, q8_0, q4_K, q5_K, q6_K, q8_K)
// into n_blocks * block_info(t).elems floats. `src` needs no alignment.
void dequantize_blocks(DType t, const uint8_t* src, int64_t n_blocks, float* out);

// ---- metadata values ----------------------------------------------------------------------------

enum class ValueType : uint32_t {
  u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7, string = 8, array = 9,
  u64 = 10, i64 = 11, f64 = 12,
};
std::string_view value_type_name(ValueType t);

// A metadata value. Strings and numeric array payloads point into the file's bytes (the File
// must outlive them); string arrays hold views; nested arrays hold Values.
struct Value {
  ValueType type = ValueType::u8;
  uint64_t u = 0;  // unsigned ints and bool
  int64_t i = 0;   // signed ints
  double f = 0;    // f32 / f64
  std::string_view str;
  // arrays
  ValueType elem = ValueType::u8;
  uint64_t count = 0;
  std::span<const uint8_t> raw;            // numeric/bool arrays: count * size(elem) bytes
  std::vector<std::string_view> strings;   // string arrays
  std::vector<Value> items;                // nested arrays

  bool is_integer() const;
  // Integer value of an integer type (bool excluded); throws naming `what` otherwise.
  int64_t as_int(std::string_view what) const;
  double as_float(std::string_view what) const;  // float or integer types
  std::string_view as_string(std::string_view what) const;
  bool as_bool(std::string_view what) const;
  // Integer arrays -> int64 values.
  std::vector<int64_t> int_array(std::string_view what) const;
  std::string summary(size_t max_items = 4) const;  // short text for `inspect`
};

struct TensorInfo {
  std::string name;
  std::vector<int64_t> ne;  // ggml order, innermost first
  uint32_t ggml_type = 0;
  DType dtype = DType::f32;
  uint64_t offset = 0;      // relative to the data section
  uint64_t nbytes = 0;
};

// ---- the reader ---------------------------------------------------------------------------------

class File {
 public:
  // Maps `path` read-only and parses it. Throws micromix::Error naming the stage and problem.
  static std::shared_ptr<File> open(const std::string& path);
  // Parses a buffer the caller keeps alive as long as the File (fuzzing, tests).
  static std::shared_ptr<File> from_memory(std::span<const uint8_t> bytes, std::string label = "<memory>");

  ~File();
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  uint64_t size() const { return bytes_.size(); }

  const std::vector<std::pair<std::string, Value>>& metadata() const { return kv_; }
  const Value* find(std::string_view key) const;  // nullptr when absent
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(std::string_view name) const;
  std::span<const uint8_t> tensor_data(const TensorInfo& t) const;

 private:
  File() = default;
  void parse();

  std::string path_;
  std::span<const uint8_t> bytes_;
  void* map_ = nullptr;  // owned mmap region, or nullptr for from_memory
  size_t map_len_ = 0;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32, data_offset_ = 0;
  std::vector<std::pair<std::string, Value>> kv_;
  std::map<std::string, size_t, std::less<>> kv_index_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

// True when the file at `path` starts with the GGUF magic.
bool has_gguf_magic(const std::string& path);

// GGUF -> ModelSource: config, canonical tensors (Llama Q/K rows un-permuted), tokenizer spec.
ModelSource load_model(const std::string& path);
ModelSource load_model(std::shared_ptr<File> file);

}  // namespace micromix::io::gguf
