// Safetensors (Hugging Face's checkpoint format): a validating reader over one or many memory-
// mapped files, and an atomic writer.
//
// File layout: u64 little-endian N | N bytes of JSON header | data section. The header maps each
// tensor name to {"dtype", "shape", "data_offsets": [begin, end)} (offsets relative to the data
// section) plus an optional "__metadata__" string -> string map.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "micromix/model_source.hpp"
#include "micromix/tensor.hpp"

namespace micromix {

// Largest JSON header we accept (the format's reference reader uses the same cap).
inline constexpr uint64_t kSafetensorsMaxHeader = 100'000'000;

// Bytes per element of a dtype safetensors can hold here (F32 F16 BF16 U8 I8 I32 I64); throws
// micromix::Error for the others.
size_t safetensors_dtype_size(DType t);
std::string_view safetensors_dtype_name(DType t);  // "F32", "BF16", ...

struct SafetensorsEntry {
  std::string name;
  DType dtype = DType::f32;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte range inside the data section
};

struct SafetensorsHeader {
  std::vector<SafetensorsEntry> tensors;  // in header order
  std::map<std::string, std::string> metadata;
  uint64_t data_offset = 0;  // 8 + header length: where the data section starts in the file
};

// Parses and validates a whole file image: header length within the file and the cap, JSON object,
// known dtypes, shapes, data_offsets matching dtype size * prod(shape), inside the data section and
// not overlapping. `what` names the file in error messages. Throws micromix::Error.
SafetensorsHeader parse_safetensors(std::span<const uint8_t> file, std::string_view what);

// Tensors of one or many safetensors files (shards of one checkpoint), memory-mapped. A tensor
// name present in two files is an error.
class SafetensorsSource final : public TensorSource {
 public:
  explicit SafetensorsSource(const std::vector<std::string>& paths);
  // From an in-memory image (tests, fuzzing); the bytes are copied.
  static std::unique_ptr<SafetensorsSource> from_bytes(std::vector<uint8_t> file, std::string what = "<memory>");
  ~SafetensorsSource() override;
  SafetensorsSource(const SafetensorsSource&) = delete;
  SafetensorsSource& operator=(const SafetensorsSource&) = delete;

  std::vector<std::string> names() const override;  // sorted
  const TensorView* find(std::string_view name) const override;
  // __metadata__ of all files merged (the first file wins on a repeated key).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  SafetensorsSource() = default;
  struct Blob;
  void add(std::unique_ptr<Blob> blob);

  std::vector<std::unique_ptr<Blob>> blobs_;
  std::map<std::string, TensorView, std::less<>> tensors_;
  std::map<std::string, std::string> metadata_;
};

// One tensor to write. `bytes` is called once, when the tensor's data is written, and must return
// exactly numel * dtype size bytes, so a writer can produce (convert, dequantize) one tensor at a time.
struct SafetensorsItem {
  std::string name;
  DType dtype = DType::f32;
  std::vector<int64_t> shape;
  std::function<std::vector<uint8_t>()> bytes;
};

// Writes a safetensors file that the reference implementation reads: the header is padded with
// spaces so the data section starts 8-byte aligned, and tensors are laid out back to back sorted by
// element size (descending) then name, so each tensor is aligned to its element size. Written to a
// temporary file in the same directory and renamed into place; refuses to replace an existing file
// unless `overwrite`. Throws micromix::Error (bad name/dtype/size, I/O).
void write_safetensors(const std::string& path, std::vector<SafetensorsItem> items,
                       const std::map<std::string, std::string>& metadata = {}, bool overwrite = false);
// Convenience: tensors whose bytes are already in memory (TensorView::data).
void write_safetensors(const std::string& path, std::span<const TensorView> tensors,
                       const std::map<std::string, std::string>& metadata = {}, bool overwrite = false);

// Writes a model as a Hugging Face checkpoint directory that transformers loads offline:
// model.safetensors (tensors under HF names, converted to `dtype`: f32 or bf16), config.json,
// and tokenizer.json + tokenizer_config.json when the model has a tokenizer. Creates `dir` if
// needed; refuses to replace an existing dir/model.safetensors unless `overwrite`.
void write_hf_directory(const ModelSource& model, const std::string& dir, DType dtype = DType::f32,
                        bool overwrite = false);

}  // namespace micromix
