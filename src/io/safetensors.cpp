// Safetensors reader (validating, memory-mapped) and atomic writer.
#include "micromix/safetensors.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <set>

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "micromix/error.hpp"

namespace micromix {

using json = nlohmann::json;

namespace {

struct DtypeInfo {
  DType dtype;
  const char* name;
  size_t size;
};
constexpr DtypeInfo kDtypes[] = {
    {DType::f32, "F32", 4}, {DType::f16, "F16", 2}, {DType::bf16, "BF16", 2}, {DType::u8, "U8", 1},
    {DType::i8, "I8", 1},   {DType::i32, "I32", 4}, {DType::i64, "I64", 8},
};

const DtypeInfo* find_dtype(DType t) {
  for (const auto& d : kDtypes)
    if (d.dtype == t) return &d;
  return nullptr;
}

std::optional<DType> parse_dtype(std::string_view s) {
  for (const auto& d : kDtypes)
    if (s == d.name) return d.dtype;
  return std::nullopt;
}

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t{p[i]} << (8 * i);
  return v;
}

// Product of the dims times the element size, or nullopt on overflow past int64.
std::optional<uint64_t> byte_size(const std::vector<int64_t>& shape, size_t elem) {
  uint64_t n = elem;
  for (int64_t d : shape) {
    if (d < 0 || __builtin_mul_overflow(n, static_cast<uint64_t>(d), &n)) return std::nullopt;
  }
  if (n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
  return n;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

// Reads one "tensor name" -> {dtype, shape, data_offsets} entry.
SafetensorsEntry parse_entry(std::string_view what, const std::string& name, const json& v, uint64_t data_size) {
  MM_CHECK(v.is_object(), "safetensors '{}': tensor '{}': entry is a JSON {}, not an object", what, name,
           v.type_name());
  for (const auto& [key, _] : v.items())
    MM_CHECK(key == "dtype" || key == "shape" || key == "data_offsets",
             "safetensors '{}': tensor '{}': unknown field '{}'", what, name, key);
  SafetensorsEntry e;
  e.name = name;

  const auto dt = v.find("dtype");
  MM_CHECK(dt != v.end() && dt->is_string(), "safetensors '{}': tensor '{}': missing or non-string 'dtype'", what,
           name);
  const auto parsed = parse_dtype(dt->get_ref<const std::string&>());
  MM_CHECK(parsed, "safetensors '{}': tensor '{}': unsupported dtype '{}' (supported: F32 F16 BF16 U8 I8 I32 I64)",
           what, name, dt->get_ref<const std::string&>());
  e.dtype = *parsed;

  const auto sh = v.find("shape");
  MM_CHECK(sh != v.end() && sh->is_array(), "safetensors '{}': tensor '{}': missing or non-array 'shape'", what, name);
  for (const auto& d : *sh) {
    MM_CHECK(d.is_number_unsigned() && d.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()),
             "safetensors '{}': tensor '{}': shape entry {} is not a non-negative integer", what, name, d.dump());
    e.shape.push_back(static_cast<int64_t>(d.get<uint64_t>()));
  }

  const auto off = v.find("data_offsets");
  MM_CHECK(off != v.end() && off->is_array() && off->size() == 2 && (*off)[0].is_number_unsigned() &&
               (*off)[1].is_number_unsigned(),
           "safetensors '{}': tensor '{}': 'data_offsets' must be [begin, end] of non-negative integers", what, name);
  e.begin = (*off)[0].get<uint64_t>();
  e.end = (*off)[1].get<uint64_t>();
  MM_CHECK(e.begin <= e.end && e.end <= data_size,
           "safetensors '{}': tensor '{}': data_offsets [{}, {}] are not a range inside the {}-byte data section", what,
           name, e.begin, e.end, data_size);
  const auto bytes = byte_size(e.shape, safetensors_dtype_size(e.dtype));
  MM_CHECK(bytes, "safetensors '{}': tensor '{}': shape {} is too large", what, name, shape_str(e.shape));
  MM_CHECK(*bytes == e.end - e.begin,
           "safetensors '{}': tensor '{}': shape {} of {} needs {} bytes but data_offsets [{}, {}] hold {}", what, name,
           shape_str(e.shape), dt->get_ref<const std::string&>(), *bytes, e.begin, e.end, e.end - e.begin);
  return e;
}

}  // namespace

size_t safetensors_dtype_size(DType t) {
  const DtypeInfo* d = find_dtype(t);
  MM_CHECK(d, "dtype #{} cannot be stored in safetensors (supported: F32 F16 BF16 U8 I8 I32 I64)",
           static_cast<int>(t));
  return d->size;
}

std::string_view safetensors_dtype_name(DType t) {
  const DtypeInfo* d = find_dtype(t);
  MM_CHECK(d, "dtype #{} cannot be stored in safetensors (supported: F32 F16 BF16 U8 I8 I32 I64)",
           static_cast<int>(t));
  return d->name;
}

SafetensorsHeader parse_safetensors(std::span<const uint8_t> file, std::string_view what) {
  MM_CHECK(file.size() >= 8, "safetensors '{}': file is {} bytes, too short for the 8-byte header length", what,
           file.size());
  const uint64_t n = read_u64_le(file.data());
  MM_CHECK(n <= kSafetensorsMaxHeader, "safetensors '{}': header length {} exceeds the limit of {} bytes", what, n,
           kSafetensorsMaxHeader);
  MM_CHECK(n <= file.size() - 8, "safetensors '{}': header length {} runs past the end of the file ({} bytes)", what,
           n, file.size());
  const char* text = reinterpret_cast<const char*>(file.data() + 8);

  // Top-level keys are tensor names; a repeated one would silently replace the first.
  std::set<std::string> seen;
  std::string duplicate;
  const json::parser_callback_t note_duplicates = [&](int depth, json::parse_event_t ev, json& parsed) {
    if (ev == json::parse_event_t::key && depth == 1 && !seen.insert(parsed.get<std::string>()).second &&
        duplicate.empty())
      duplicate = parsed.get<std::string>();
    return true;
  };
  json j;
  try {
    j = json::parse(text, text + n, note_duplicates);
  } catch (const json::exception& e) {
    fail("safetensors '{}': header is not valid JSON: {}", what, e.what());
  }
  MM_CHECK(duplicate.empty(), "safetensors '{}': tensor '{}' appears twice in the header", what, duplicate);
  MM_CHECK(j.is_object(), "safetensors '{}': header is a JSON {}, not an object", what, j.type_name());

  SafetensorsHeader h;
  h.data_offset = 8 + n;
  const uint64_t data_size = file.size() - h.data_offset;
  for (const auto& [key, val] : j.items()) {
    if (key == "__metadata__") {
      MM_CHECK(val.is_object(), "safetensors '{}': __metadata__ is a JSON {}, not an object", what, val.type_name());
      for (const auto& [mk, mv] : val.items()) {
        MM_CHECK(mv.is_string(), "safetensors '{}': __metadata__ value of '{}' is not a string", what, mk);
        h.metadata[mk] = mv.get<std::string>();
      }
      continue;
    }
    h.tensors.push_back(parse_entry(what, key, val, data_size));
  }

  // No two tensors may share bytes (sorted by range, each must start at or after the previous end).
  std::vector<const SafetensorsEntry*> by_offset;
  for (const auto& e : h.tensors) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(), [](const auto* a, const auto* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  for (size_t i = 1; i < by_offset.size(); ++i)
    MM_CHECK(by_offset[i]->begin >= by_offset[i - 1]->end,
             "safetensors '{}': tensors '{}' [{}, {}] and '{}' [{}, {}] overlap", what, by_offset[i - 1]->name,
             by_offset[i - 1]->begin, by_offset[i - 1]->end, by_offset[i]->name, by_offset[i]->begin,
             by_offset[i]->end);
  return h;
}

// ---- reader ----------------------------------------------------------------

// Bytes of one file: a read-only memory map, or an owned copy.
struct SafetensorsSource::Blob {
  std::string what;
  std::vector<uint8_t> owned;
  void* map = nullptr;
  size_t map_len = 0;
  std::span<const uint8_t> bytes;

  ~Blob() {
    if (map) ::munmap(map, map_len);
  }

  static std::unique_ptr<Blob> map_file(const std::string& path) {
    auto b = std::make_unique<Blob>();
    b->what = path;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    MM_CHECK(fd >= 0, "safetensors '{}': cannot open: {}", path, std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      fail("safetensors '{}': not a regular file", path);
    }
    const size_t len = static_cast<size_t>(st.st_size);
    if (len > 0) {
      void* p = ::mmap(nullptr, len, PROT_READ, MAP_PRIVATE, fd, 0);
      const int err = errno;
      ::close(fd);
      MM_CHECK(p != MAP_FAILED, "safetensors '{}': mmap of {} bytes failed: {}", path, len, std::strerror(err));
      b->map = p;
      b->map_len = len;
      b->bytes = {static_cast<const uint8_t*>(p), len};
    } else {
      ::close(fd);
    }
    return b;
  }
};

SafetensorsSource::~SafetensorsSource() = default;

SafetensorsSource::SafetensorsSource(const std::vector<std::string>& paths) {
  MM_CHECK(!paths.empty(), "safetensors: no files given");
  for (const auto& p : paths) add(Blob::map_file(p));
}

std::unique_ptr<SafetensorsSource> SafetensorsSource::from_bytes(std::vector<uint8_t> file, std::string what) {
  std::unique_ptr<SafetensorsSource> s(new SafetensorsSource());
  auto b = std::make_unique<Blob>();
  b->what = std::move(what);
  b->owned = std::move(file);
  b->bytes = b->owned;
  s->add(std::move(b));
  return s;
}

void SafetensorsSource::add(std::unique_ptr<Blob> blob) {
  const SafetensorsHeader h = parse_safetensors(blob->bytes, blob->what);
  for (const auto& e : h.tensors) {
    MM_CHECK(!tensors_.contains(e.name), "safetensors '{}': tensor '{}' is also in an earlier file", blob->what,
             e.name);
    TensorView v;
    v.name = e.name;
    v.dtype = e.dtype;
    v.shape = e.shape;
    v.data = blob->bytes.subspan(h.data_offset + e.begin, e.end - e.begin);
    tensors_.emplace(e.name, std::move(v));
  }
  for (const auto& [k, v] : h.metadata) metadata_.emplace(k, v);
  blobs_.push_back(std::move(blob));
}

std::vector<std::string> SafetensorsSource::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const auto& [name, _] : tensors_) out.push_back(name);
  return out;
}

const TensorView* SafetensorsSource::find(std::string_view name) const {
  const auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

// ---- writer ----------------------------------------------------------------

namespace {

void write_all(int fd, const uint8_t* p, size_t n, const std::string& path) {
  while (n) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail("writing '{}': {}", path, std::strerror(errno));
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

}  // namespace

void write_safetensors(const std::string& path, std::vector<SafetensorsItem> items,
                       const std::map<std::string, std::string>& metadata, bool overwrite) {
  // Validate everything before touching the disk.
  std::set<std::string_view> names;
  for (const auto& it : items) {
    MM_CHECK(!it.name.empty() && it.name != "__metadata__", "writing '{}': invalid tensor name '{}'", path, it.name);
    MM_CHECK(names.insert(it.name).second, "writing '{}': tensor '{}' given twice", path, it.name);
    MM_CHECK(find_dtype(it.dtype), "writing '{}': tensor '{}': dtype #{} cannot be stored in safetensors", path,
             it.name, static_cast<int>(it.dtype));
    MM_CHECK(byte_size(it.shape, safetensors_dtype_size(it.dtype)),
             "writing '{}': tensor '{}': shape {} is negative or too large", path, it.name, shape_str(it.shape));
    MM_CHECK(it.bytes, "writing '{}': tensor '{}' has no data", path, it.name);
  }
  // Widest elements first keeps every tensor aligned to its element size (data starts 8-aligned).
  std::sort(items.begin(), items.end(), [](const SafetensorsItem& a, const SafetensorsItem& b) {
    const size_t sa = safetensors_dtype_size(a.dtype), sb = safetensors_dtype_size(b.dtype);
    return sa != sb ? sa > sb : a.name < b.name;
  });

  json h = json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& it : items) {
    const uint64_t n = *byte_size(it.shape, safetensors_dtype_size(it.dtype));
    h[it.name] = {{"dtype", safetensors_dtype_name(it.dtype)}, {"shape", it.shape}, {"data_offsets", {offset, offset + n}}};
    offset += n;
  }
  std::string header;
  try {
    header = h.dump();
  } catch (const json::exception& e) {
    fail("writing '{}': cannot encode the header (names and metadata must be UTF-8): {}", path, e.what());
  }
  header.append((8 - header.size() % 8) % 8, ' ');

  namespace fs = std::filesystem;
  MM_CHECK(overwrite || !fs::exists(path), "'{}' already exists (HINT: pass --force to replace it)", path);
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::string tmp_name = target.filename().string();
  tmp_name.insert(tmp_name.begin(), '.');  // (not "." + name: GCC 12 warns falsely on that)
  tmp_name.append(".tmp-XXXXXX");
  std::string tmp = (dir / tmp_name).string();
  const int fd = ::mkstemp(tmp.data());
  MM_CHECK(fd >= 0, "writing '{}': cannot create a temporary file in '{}': {}", path, dir.string(),
           std::strerror(errno));
  try {
    uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(header.size() >> (8 * i));
    write_all(fd, len, 8, tmp);
    write_all(fd, reinterpret_cast<const uint8_t*>(header.data()), header.size(), tmp);
    for (auto& it : items) {
      const std::vector<uint8_t> bytes = it.bytes();
      const uint64_t want = *byte_size(it.shape, safetensors_dtype_size(it.dtype));
      MM_CHECK(bytes.size() == want, "writing '{}': tensor '{}' of shape {} ({}) needs {} bytes, got {}", path, it.name,
               shape_str(it.shape), safetensors_dtype_name(it.dtype), want, bytes.size());
      write_all(fd, bytes.data(), bytes.size(), tmp);
    }
    MM_CHECK(::fchmod(fd, 0644) == 0 && ::fsync(fd) == 0, "writing '{}': {}", tmp, std::strerror(errno));
    MM_CHECK(::close(fd) == 0, "writing '{}': {}", tmp, std::strerror(errno));
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  if (overwrite) {
    const int rc = ::rename(tmp.c_str(), path.c_str());
    const int err = errno;
    if (rc != 0) ::unlink(tmp.c_str());
    MM_CHECK(rc == 0, "writing '{}': cannot rename the temporary file into place: {}", path, std::strerror(err));
  } else {
    // link() fails if the target appeared meanwhile: never replaces a file we were told to keep.
    int rc = ::link(tmp.c_str(), path.c_str());
    int err = errno;
    if (rc != 0 && err != EEXIST && !fs::exists(path)) {  // no hard links on this file system
      rc = ::rename(tmp.c_str(), path.c_str());
      err = errno;
    }
    ::unlink(tmp.c_str());
    MM_CHECK(rc == 0, "writing '{}': {}", path,
             err == EEXIST ? std::string("already exists (HINT: pass --force to replace it)") : std::strerror(err));
  }
}

void write_safetensors(const std::string& path, std::span<const TensorView> tensors,
                       const std::map<std::string, std::string>& metadata, bool overwrite) {
  std::vector<SafetensorsItem> items;
  items.reserve(tensors.size());
  for (const TensorView& t : tensors) {
    const auto n = byte_size(t.shape, safetensors_dtype_size(t.dtype));
    MM_CHECK(n && *n == t.data.size(), "writing '{}': tensor '{}' of shape {} ({}) has {} bytes of data", path, t.name,
             shape_str(t.shape), safetensors_dtype_name(t.dtype), t.data.size());
    const auto data = t.data;
    items.push_back({t.name, t.dtype, t.shape, [data] { return std::vector<uint8_t>(data.begin(), data.end()); }});
  }
  write_safetensors(path, std::move(items), metadata, overwrite);
}

}  // namespace micromix
