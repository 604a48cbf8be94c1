// A small GGUF writer for tests: builds valid files from metadata and tensors, with knobs to make
// them deliberately wrong (magic, version, counts, offsets, alignment). Written from the format
// description, independently of the reader under test.
#pragma once
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace testutil::gguf {

// Little-endian byte builder.
struct Bytes {
  std::string s;
  template <typename T>
  Bytes& put(T v) {
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    s.append(b, sizeof(T));
    return *this;
  }
  Bytes& str(const std::string& v) {
    put<uint64_t>(v.size());
    s += v;
    return *this;
  }
};

// Value type codes of the format.
enum : uint32_t { U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7, STRING = 8, ARRAY = 9,
                  U64 = 10, I64 = 11, F64 = 12 };

// An encoded value: its type code and payload bytes (without the type code).
struct Val {
  uint32_t type;
  std::string payload;
};

template <typename T>
Val scalar(uint32_t type, T v) {
  Bytes b;
  b.put<T>(v);
  return {type, b.s};
}
inline Val u32(uint32_t v) { return scalar(U32, v); }
inline Val i32(int32_t v) { return scalar(I32, v); }
inline Val u64(uint64_t v) { return scalar(U64, v); }
inline Val f32(float v) { return scalar(F32, v); }
inline Val f64(double v) { return scalar(F64, v); }
inline Val boolean(bool v) { return scalar(BOOL, static_cast<uint8_t>(v)); }
inline Val string(const std::string& v) {
  Bytes b;
  b.str(v);
  return {STRING, b.s};
}
// Array of values that all have type elem_type.
inline Val array(uint32_t elem_type, const std::vector<Val>& items) {
  Bytes b;
  b.put<uint32_t>(elem_type).put<uint64_t>(items.size());
  for (const Val& v : items) b.s += v.payload;
  return {ARRAY, b.s};
}
inline Val string_array(const std::vector<std::string>& v) {
  std::vector<Val> items;
  for (const auto& x : v) items.push_back(string(x));
  return array(STRING, items);
}
inline Val i32_array(const std::vector<int32_t>& v) {
  std::vector<Val> items;
  for (int32_t x : v) items.push_back(i32(x));
  return array(I32, items);
}

struct Tensor {
  std::string name;
  std::vector<uint64_t> ne;  // innermost first
  uint32_t ggml_type;
  std::string data;
  std::optional<uint64_t> offset;  // default: next aligned offset
  bool omit_data = false;          // write the info only (for offsets far beyond the file)
};

struct Writer {
  std::string magic = "GGUF";
  uint32_t version = 3;
  uint64_t alignment = 32;  // used for layout; write general.alignment yourself to change it in the file
  std::optional<uint64_t> n_tensors_override, n_kv_override;
  std::vector<std::pair<std::string, Val>> kv;
  std::vector<Tensor> tensors;

  Writer& set(const std::string& key, Val v) {
    kv.emplace_back(key, std::move(v));
    return *this;
  }
  Writer& tensor(const std::string& name, std::vector<uint64_t> ne, uint32_t type, std::string data) {
    tensors.push_back({name, std::move(ne), type, std::move(data), std::nullopt});
    return *this;
  }

  std::string build() const {
    Bytes b;
    b.s += magic;
    b.put<uint32_t>(version).put<uint64_t>(n_tensors_override.value_or(tensors.size()));
    b.put<uint64_t>(n_kv_override.value_or(kv.size()));
    for (const auto& [k, v] : kv) {
      b.str(k).put<uint32_t>(v.type);
      b.s += v.payload;
    }
    std::vector<uint64_t> offsets;
    uint64_t next = 0;
    for (const Tensor& t : tensors) {
      const uint64_t off = t.offset.value_or(next);
      offsets.push_back(off);
      if (!t.omit_data) next = std::max(next, (off + t.data.size() + alignment - 1) / alignment * alignment);
      b.str(t.name).put<uint32_t>(static_cast<uint32_t>(t.ne.size()));
      for (uint64_t n : t.ne) b.put<uint64_t>(n);
      b.put<uint32_t>(t.ggml_type).put<uint64_t>(off);
    }
    if (tensors.empty()) return b.s;
    b.s.resize((b.s.size() + alignment - 1) / alignment * alignment, '\0');
    const size_t data_start = b.s.size();
    for (size_t i = 0; i < tensors.size(); ++i) {
      if (tensors[i].omit_data) continue;
      const size_t at = data_start + offsets[i];
      if (b.s.size() < at + tensors[i].data.size()) b.s.resize(at + tensors[i].data.size(), '\0');
      std::memcpy(b.s.data() + at, tensors[i].data.data(), tensors[i].data.size());
    }
    return b.s;
  }
};

// float32 values as little-endian bytes.
inline std::string f32_bytes(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

}  // namespace testutil::gguf
