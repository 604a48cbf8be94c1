// GGUF v3 reader. Every count, length and offset read from the file is checked against the bytes
// that remain BEFORE anything is allocated, so hostile files fail with a message, never with a
// crash or a huge allocation. Errors read "gguf '<path>': <stage>: <problem>".
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <fstream>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "io/gguf.hpp"
#include "micromix/error.hpp"

namespace micromix::io::gguf {
namespace {

constexpr uint32_t kVersion = 3;
constexpr uint32_t kMaxDims = 4;         // GGML_MAX_DIMS
constexpr int kMaxArrayDepth = 8;        // nested arrays deeper than this are rejected
constexpr uint64_t kMaxAlignment = 1u << 20;

// Size of one element of a numeric/bool value type; 0 for string/array.
uint64_t scalar_size(ValueType t) {
  switch (t) {
    case ValueType::u8: case ValueType::i8: case ValueType::boolean: return 1;
    case ValueType::u16: case ValueType::i16: return 2;
    case ValueType::u32: case ValueType::i32: case ValueType::f32: return 4;
    case ValueType::u64: case ValueType::i64: case ValueType::f64: return 8;
    default: return 0;
  }
}

bool valid_value_type(uint32_t t) { return t <= static_cast<uint32_t>(ValueType::f64); }

// Reads little-endian fields from [pos, end); every read is bounds-checked.
class Reader {
 public:
  Reader(std::span<const uint8_t> bytes, const std::string& label) : b_(bytes), label_(label) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return b_.size() - pos_; }
  std::string stage;  // what is being read, for error messages

  template <typename... Args>
  [[noreturn]] void error(fmt::format_string<Args...> f, Args&&... args) const {
    fail("gguf '{}': {}: {}", label_, stage, fmt::format(f, std::forward<Args>(args)...));
  }

  void need(uint64_t n, std::string_view what) const {
    if (n > remaining())
      error("truncated: {} needs {} bytes at offset {}, file has {} bytes", what, n, pos_, b_.size());
  }
  std::span<const uint8_t> take(uint64_t n, std::string_view what) {
    need(n, what);
    auto s = b_.subspan(pos_, n);
    pos_ += n;
    return s;
  }
  template <typename T>
  T read(std::string_view what) {
    T v;
    std::memcpy(&v, take(sizeof(T), what).data(), sizeof(T));
    return v;
  }
  std::string_view read_string(std::string_view what) {
    const uint64_t len = read<uint64_t>(what);
    if (len > remaining())
      error("{} length {} exceeds the {} bytes left in the file", what, len, remaining());
    auto s = take(len, what);
    return {reinterpret_cast<const char*>(s.data()), s.size()};
  }

 private:
  std::span<const uint8_t> b_;
  const std::string& label_;
  uint64_t pos_ = 0;
};

Value read_value(Reader& r, ValueType type, int depth);

Value read_array(Reader& r, int depth) {
  if (depth >= kMaxArrayDepth) r.error("arrays nested deeper than {}", kMaxArrayDepth);
  Value v;
  v.type = ValueType::array;
  const uint32_t elem = r.read<uint32_t>("array element type");
  if (!valid_value_type(elem)) r.error("unknown array element type {}", elem);
  v.elem = static_cast<ValueType>(elem);
  v.count = r.read<uint64_t>("array length");
  // Smallest encoding of one element: bounds the count by the bytes left before allocating.
  const uint64_t min_size = v.elem == ValueType::string ? 8 : v.elem == ValueType::array ? 12 : scalar_size(v.elem);
  if (v.count > r.remaining() / min_size)
    r.error("array of {} {} elements needs at least {} bytes per element, only {} bytes left", v.count,
            value_type_name(v.elem), min_size, r.remaining());
  if (v.elem == ValueType::string) {
    v.strings.reserve(v.count);
    for (uint64_t k = 0; k < v.count; ++k) v.strings.push_back(r.read_string("array string"));
  } else if (v.elem == ValueType::array) {
    v.items.reserve(v.count);
    for (uint64_t k = 0; k < v.count; ++k) v.items.push_back(read_array(r, depth + 1));
  } else {
    v.raw = r.take(v.count * min_size, "array data");
  }
  return v;
}

Value read_value(Reader& r, ValueType type, int depth) {
  Value v;
  v.type = type;
  switch (type) {
    case ValueType::u8: v.u = r.read<uint8_t>("u8 value"); break;
    case ValueType::i8: v.i = r.read<int8_t>("i8 value"); break;
    case ValueType::u16: v.u = r.read<uint16_t>("u16 value"); break;
    case ValueType::i16: v.i = r.read<int16_t>("i16 value"); break;
    case ValueType::u32: v.u = r.read<uint32_t>("u32 value"); break;
    case ValueType::i32: v.i = r.read<int32_t>("i32 value"); break;
    case ValueType::u64: v.u = r.read<uint64_t>("u64 value"); break;
    case ValueType::i64: v.i = r.read<int64_t>("i64 value"); break;
    case ValueType::f32: v.f = r.read<float>("f32 value"); break;
    case ValueType::f64: v.f = r.read<double>("f64 value"); break;
    case ValueType::boolean: v.u = r.read<uint8_t>("bool value") != 0; break;
    case ValueType::string: v.str = r.read_string("string value"); break;
    case ValueType::array: return read_array(r, depth);
  }
  return v;
}

// Names and keys from the file, shortened and with control bytes escaped, for messages.
std::string printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 80)) {
    const auto u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u == 0x7f) ? fmt::format("\\x{:02x}", u) : std::string(1, c);
  }
  return s.size() > 80 ? out + "..." : out;
}

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

}  // namespace

// ---- Value --------------------------------------------------------------------------------------

std::string_view value_type_name(ValueType t) {
  static constexpr std::string_view names[] = {"u8",  "i8",     "u16",    "i16",   "u32", "i32", "f32",
                                               "bool", "string", "array", "u64", "i64", "f64"};
  const auto i = static_cast<uint32_t>(t);
  return i < std::size(names) ? names[i] : "invalid";
}

bool Value::is_integer() const {
  switch (type) {
    case ValueType::u8: case ValueType::i8: case ValueType::u16: case ValueType::i16: case ValueType::u32:
    case ValueType::i32: case ValueType::u64: case ValueType::i64: return true;
    default: return false;
  }
}

int64_t Value::as_int(std::string_view what) const {
  MM_CHECK(is_integer(), "gguf: {}: expected an integer, got {}", what, value_type_name(type));
  if (type == ValueType::u8 || type == ValueType::u16 || type == ValueType::u32 || type == ValueType::u64) {
    MM_CHECK(u <= static_cast<uint64_t>(INT64_MAX), "gguf: {}: value {} out of range", what, u);
    return static_cast<int64_t>(u);
  }
  return i;
}

double Value::as_float(std::string_view what) const {
  if (type == ValueType::f32 || type == ValueType::f64) return f;
  return static_cast<double>(as_int(what));
}

std::string_view Value::as_string(std::string_view what) const {
  MM_CHECK(type == ValueType::string, "gguf: {}: expected a string, got {}", what, value_type_name(type));
  return str;
}

bool Value::as_bool(std::string_view what) const {
  if (type == ValueType::boolean) return u != 0;
  return as_int(what) != 0;
}

std::vector<int64_t> Value::int_array(std::string_view what) const {
  MM_CHECK(type == ValueType::array, "gguf: {}: expected an array, got {}", what, value_type_name(type));
  const uint64_t sz = scalar_size(elem);
  const bool is_int = elem != ValueType::f32 && elem != ValueType::f64 && elem != ValueType::boolean && sz != 0;
  MM_CHECK(is_int, "gguf: {}: expected an array of integers, got an array of {}", what, value_type_name(elem));
  std::vector<int64_t> out(count);
  for (uint64_t k = 0; k < count; ++k) {
    const uint8_t* p = raw.data() + k * sz;
    switch (elem) {
      case ValueType::u8: out[k] = load<uint8_t>(p); break;
      case ValueType::i8: out[k] = load<int8_t>(p); break;
      case ValueType::u16: out[k] = load<uint16_t>(p); break;
      case ValueType::i16: out[k] = load<int16_t>(p); break;
      case ValueType::u32: out[k] = load<uint32_t>(p); break;
      case ValueType::i32: out[k] = load<int32_t>(p); break;
      case ValueType::u64: {
        const uint64_t x = load<uint64_t>(p);
        MM_CHECK(x <= static_cast<uint64_t>(INT64_MAX), "gguf: {}: element {} out of range", what, k);
        out[k] = static_cast<int64_t>(x);
        break;
      }
      default: out[k] = load<int64_t>(p); break;
    }
  }
  return out;
}

std::string Value::summary(size_t max_items) const {
  auto quoted = [](std::string_view s) {
    std::string t(s.substr(0, 60));
    for (char& c : t)
      if (c == '\n' || c == '\r' || c == '\t') c = ' ';
    return fmt::format("\"{}\"{}", t, s.size() > 60 ? "..." : "");
  };
  switch (type) {
    case ValueType::u8: case ValueType::u16: case ValueType::u32: case ValueType::u64: return std::to_string(u);
    case ValueType::i8: case ValueType::i16: case ValueType::i32: case ValueType::i64: return std::to_string(i);
    case ValueType::f32: case ValueType::f64: return fmt::format("{:g}", f);
    case ValueType::boolean: return u ? "true" : "false";
    case ValueType::string: return quoted(str);
    case ValueType::array: break;
  }
  std::vector<std::string> parts;
  const size_t n = static_cast<size_t>(std::min<uint64_t>(count, max_items));
  if (elem == ValueType::string) {
    for (size_t k = 0; k < n; ++k) parts.push_back(quoted(strings[k]));
  } else if (elem == ValueType::array) {
    for (size_t k = 0; k < n; ++k) parts.push_back(items[k].summary(max_items));
  } else if (elem == ValueType::f32 || elem == ValueType::f64) {
    for (size_t k = 0; k < n; ++k)
      parts.push_back(fmt::format("{:g}", elem == ValueType::f32 ? load<float>(raw.data() + 4 * k) : load<double>(raw.data() + 8 * k)));
  } else if (elem == ValueType::boolean) {
    for (size_t k = 0; k < n; ++k) parts.push_back(raw[k] ? "true" : "false");
  } else {
    const auto v = int_array("summary");
    for (size_t k = 0; k < n; ++k) parts.push_back(std::to_string(v[k]));
  }
  return fmt::format("[{}{}] ({} x {})", fmt::join(parts, ", "), count > n ? ", ..." : "", count,
                     value_type_name(elem));
}

// ---- File ---------------------------------------------------------------------------------------

std::shared_ptr<File> File::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("gguf '{}': cannot open: {}", path, std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    fail("gguf '{}': cannot stat: {}", path, std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail("gguf '{}': not a regular file", path);
  }
  if (st.st_size == 0) {
    ::close(fd);
    fail("gguf '{}': header: empty file", path);
  }
  const size_t len = static_cast<size_t>(st.st_size);
  void* p = ::mmap(nullptr, len, PROT_READ, MAP_PRIVATE, fd, 0);
  const int err = errno;
  ::close(fd);
  if (p == MAP_FAILED) fail("gguf '{}': cannot map {} bytes: {}", path, len, std::strerror(err));
  std::shared_ptr<File> f(new File());
  f->path_ = path;
  f->map_ = p;
  f->map_len_ = len;
  f->bytes_ = {static_cast<const uint8_t*>(p), len};
  f->parse();
  return f;
}

std::shared_ptr<File> File::from_memory(std::span<const uint8_t> bytes, std::string label) {
  std::shared_ptr<File> f(new File());
  f->path_ = std::move(label);
  f->bytes_ = bytes;
  f->parse();
  return f;
}

File::~File() {
  if (map_) ::munmap(map_, map_len_);
}

void File::parse() {
  Reader r(bytes_, path_);
  // ---- header
  r.stage = "header";
  const auto magic = r.take(4, "magic");
  if (std::memcmp(magic.data(), "GGUF", 4) != 0)
    r.error("bad magic {:02x} {:02x} {:02x} {:02x} (expected \"GGUF\"); not a GGUF file", magic[0], magic[1],
            magic[2], magic[3]);
  version_ = r.read<uint32_t>("version");
  if (version_ != kVersion)
    r.error("unsupported GGUF version {} (micromix reads version {}; re-convert the model with a current llama.cpp)",
            version_, kVersion);
  const uint64_t n_tensors = r.read<uint64_t>("tensor count");
  const uint64_t n_kv = r.read<uint64_t>("metadata count");
  // Each entry takes at least 13 (kv: key length, type, 1 byte) or 32 bytes (tensor info).
  if (n_kv > r.remaining() / 13) r.error("metadata count {} cannot fit in the {} bytes left", n_kv, r.remaining());
  if (n_tensors > r.remaining() / 32)
    r.error("tensor count {} cannot fit in the {} bytes left", n_tensors, r.remaining());

  // ---- metadata
  kv_.reserve(n_kv);
  for (uint64_t k = 0; k < n_kv; ++k) {
    r.stage = fmt::format("metadata entry {}", k);
    const std::string key(r.read_string("key"));
    r.stage = fmt::format("metadata '{}'", printable(key));
    const uint32_t type = r.read<uint32_t>("value type");
    if (!valid_value_type(type)) r.error("unknown value type {}", type);
    Value v = read_value(r, static_cast<ValueType>(type), 0);
    if (!kv_index_.emplace(key, kv_.size()).second) r.error("duplicate key");
    kv_.emplace_back(key, std::move(v));
  }

  r.stage = "metadata 'general.alignment'";
  if (const Value* a = find("general.alignment")) {
    if (a->type != ValueType::u32) r.error("must be a u32, got {}", value_type_name(a->type));
    if (a->u == 0 || !std::has_single_bit(a->u) || a->u > kMaxAlignment)
      r.error("{} is not a power of two in [1, {}]", a->u, kMaxAlignment);
    alignment_ = a->u;
  }

  // ---- tensor infos
  tensors_.reserve(n_tensors);
  for (uint64_t k = 0; k < n_tensors; ++k) {
    r.stage = fmt::format("tensor info {}", k);
    TensorInfo t;
    t.name = std::string(r.read_string("name"));
    r.stage = fmt::format("tensor '{}'", printable(t.name));
    const uint32_t n_dims = r.read<uint32_t>("n_dims");
    if (n_dims == 0 || n_dims > kMaxDims) r.error("n_dims {} not in [1, {}]", n_dims, kMaxDims);
    t.ne.resize(n_dims);
    int64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t ne = r.read<uint64_t>("ne");
      if (ne > static_cast<uint64_t>(INT64_MAX)) r.error("ne[{}] = {} is negative as int64", d, ne);
      t.ne[d] = static_cast<int64_t>(ne);
      if (t.ne[d] != 0 && numel > INT64_MAX / t.ne[d]) r.error("element count overflows int64");
      numel *= t.ne[d];
    }
    t.ggml_type = r.read<uint32_t>("type");
    const auto dt = dtype_from_ggml(t.ggml_type);
    if (!dt) {
      const auto nm = ggml_type_name(t.ggml_type);
      if (nm.empty()) r.error("unknown tensor type {}", t.ggml_type);
      r.error("tensor type {} ({}) is not supported by micromix", nm, t.ggml_type);
    }
    t.dtype = *dt;
    const BlockInfo bi = block_info(t.dtype);
    if (t.ne[0] % bi.elems != 0)
      r.error("ne[0] = {} is not a multiple of the {}-element {} block", t.ne[0], bi.elems, dtype_name(t.dtype));
    if (numel / bi.elems > INT64_MAX / bi.bytes) r.error("byte size overflows");
    t.nbytes = static_cast<uint64_t>(numel / bi.elems * bi.bytes);
    t.offset = r.read<uint64_t>("offset");
    if (t.offset % alignment_ != 0) r.error("data offset {} is not a multiple of the alignment {}", t.offset, alignment_);
    if (!tensor_index_.emplace(t.name, tensors_.size()).second) r.error("duplicate tensor name");
    tensors_.push_back(std::move(t));
  }

  // ---- data section: starts at the next multiple of the alignment
  r.stage = "data section";
  const uint64_t end_of_infos = r.pos();
  data_offset_ = (end_of_infos + alignment_ - 1) / alignment_ * alignment_;
  if (!tensors_.empty() && data_offset_ > bytes_.size())
    r.error("starts at {} beyond the end of the file ({} bytes)", data_offset_, bytes_.size());
  const uint64_t data_size = data_offset_ <= bytes_.size() ? bytes_.size() - data_offset_ : 0;
  for (const TensorInfo& t : tensors_) {
    r.stage = fmt::format("tensor '{}'", printable(t.name));
    if (t.offset > data_size || t.nbytes > data_size - t.offset)
      r.error("data [{}, {}) (relative to the data section at {}) beyond end of file ({} bytes)", t.offset,
              t.offset + t.nbytes, data_offset_, bytes_.size());
  }
}

const Value* File::find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const TensorInfo* File::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

std::span<const uint8_t> File::tensor_data(const TensorInfo& t) const {
  return bytes_.subspan(data_offset_ + t.offset, t.nbytes);
}

bool has_gguf_magic(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char m[4] = {};
  return f.read(m, 4) && std::memcmp(m, "GGUF", 4) == 0;
}

}  // namespace micromix::io::gguf
