// Safetensors writer -> reader round trips, layout checked against the format's rules, and the
// writer's refusals (overwrite, bad sizes).
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <random>

#include <nlohmann/json.hpp>

#include "micromix/error.hpp"
#include "micromix/safetensors.hpp"
#include "tools/cli_runner.hpp"

using namespace micromix;

namespace {

struct OwnedTensor {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
  TensorView view() const { return {name, dtype, shape, bytes}; }
};

size_t elem_size(DType t) {  // independent of the library's table
  switch (t) {
    case DType::f32: case DType::i32: return 4;
    case DType::f16: case DType::bf16: return 2;
    case DType::u8: case DType::i8: return 1;
    case DType::i64: return 8;
    default: return 0;
  }
}

constexpr DType kAll[] = {DType::f32, DType::f16, DType::bf16, DType::u8, DType::i8, DType::i32, DType::i64};

// Random tensors of every dtype: random shapes (scalars and empty dims included), random bytes
// (any bit pattern, NaNs too, must survive unchanged).
std::vector<OwnedTensor> random_tensors(std::mt19937& g) {
  std::vector<OwnedTensor> out;
  std::uniform_int_distribution<int> rank(0, 3), dim(0, 7), byte(0, 255);
  int i = 0;
  for (DType t : kAll)
    for (int k = 0; k < 3; ++k) {
      OwnedTensor o{fmt::format("layer.{}.w{}", i++, k), t, {}, {}};
      const int r = k == 0 ? 0 : rank(g);
      for (int d = 0; d < r; ++d) o.shape.push_back(k == 1 && d == 0 ? dim(g) + 1 : dim(g));
      int64_t n = 1;
      for (auto d : o.shape) n *= d;
      o.bytes.resize(static_cast<size_t>(n) * elem_size(t));
      for (auto& b : o.bytes) b = static_cast<uint8_t>(byte(g));
      out.push_back(std::move(o));
    }
  return out;
}

std::vector<TensorView> views(const std::vector<OwnedTensor>& ts) {
  std::vector<TensorView> v;
  for (const auto& t : ts) v.push_back(t.view());
  return v;
}

void expect_same(const SafetensorsSource& src, const std::vector<OwnedTensor>& want) {
  EXPECT_EQ(src.names().size(), want.size());
  for (const auto& w : want) {
    const TensorView* got = src.find(w.name);
    ASSERT_NE(got, nullptr) << w.name;
    EXPECT_EQ(got->dtype, w.dtype) << w.name;
    EXPECT_EQ(got->shape, w.shape) << w.name;
    ASSERT_EQ(got->data.size(), w.bytes.size()) << w.name;
    EXPECT_TRUE(std::equal(w.bytes.begin(), w.bytes.end(), got->data.begin())) << w.name;
  }
}

std::vector<uint8_t> read_bytes(const std::string& p) {
  const std::string s = testutil::read_file(p);
  return {s.begin(), s.end()};
}

}  // namespace

TEST(Safetensors, RoundTripIsBitIdenticalForEveryDtype) {
  std::mt19937 g(std::random_device{}());
  testutil::TempDir dir;
  const auto tensors = random_tensors(g);
  const std::map<std::string, std::string> meta = {{"format", "pt"}, {"note", "ünïcode ok"}};
  write_safetensors(dir.file("a.safetensors"), views(tensors), meta);
  const SafetensorsSource src({dir.file("a.safetensors")});
  expect_same(src, tensors);
  EXPECT_EQ(src.metadata(), meta);
  EXPECT_EQ(src.find("absent"), nullptr);
  // The same bytes read from memory.
  const auto mem = SafetensorsSource::from_bytes(read_bytes(dir.file("a.safetensors")));
  expect_same(*mem, tensors);
}

// The layout rules of the reference implementation, read with plain JSON: data section 8-aligned,
// tensors back to back from offset 0 to the end of the file, each aligned to its element size.
TEST(Safetensors, WriterLayoutFollowsTheReferenceRules) {
  std::mt19937 g(std::random_device{}());
  testutil::TempDir dir;
  const auto tensors = random_tensors(g);
  write_safetensors(dir.file("a.safetensors"), views(tensors));
  const auto file = read_bytes(dir.file("a.safetensors"));
  ASSERT_GE(file.size(), 8u);
  uint64_t n = 0;
  std::memcpy(&n, file.data(), 8);  // little-endian host
  ASSERT_LE(8 + n, file.size());
  EXPECT_EQ((8 + n) % 8, 0u);
  EXPECT_EQ(file[8], '{');
  const auto h = nlohmann::json::parse(file.begin() + 8, file.begin() + 8 + static_cast<long>(n));
  EXPECT_FALSE(h.contains("__metadata__"));
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const auto& t : tensors) {
    ASSERT_TRUE(h.contains(t.name));
    const auto& e = h[t.name];
    const uint64_t b = e["data_offsets"][0], en = e["data_offsets"][1];
    EXPECT_EQ(en - b, t.bytes.size());
    EXPECT_EQ((8 + n + b) % elem_size(t.dtype), 0u) << t.name;
    EXPECT_EQ(std::memcmp(file.data() + 8 + n + b, t.bytes.data(), t.bytes.size()), 0) << t.name;
    ranges.emplace_back(b, en);
  }
  std::sort(ranges.begin(), ranges.end());
  uint64_t at = 0;
  for (auto [b, e] : ranges) {
    EXPECT_EQ(b, at);
    at = e;
  }
  EXPECT_EQ(8 + n + at, file.size());
}

TEST(Safetensors, ManyFilesFormOneSourceAndRejectRepeatedNames) {
  std::mt19937 g(std::random_device{}());
  testutil::TempDir dir;
  auto tensors = random_tensors(g);
  const std::vector<OwnedTensor> a(tensors.begin(), tensors.begin() + 5), b(tensors.begin() + 5, tensors.end());
  write_safetensors(dir.file("a.safetensors"), views(a));
  write_safetensors(dir.file("b.safetensors"), views(b));
  const SafetensorsSource src({dir.file("a.safetensors"), dir.file("b.safetensors")});
  expect_same(src, tensors);
  write_safetensors(dir.file("c.safetensors"), views({tensors[0]}));
  EXPECT_THROW(SafetensorsSource({dir.file("a.safetensors"), dir.file("c.safetensors")}), Error);
}

TEST(Safetensors, WriterRefusesToOverwriteUnlessAsked) {
  std::mt19937 g(std::random_device{}());
  testutil::TempDir dir;
  const auto first = random_tensors(g), second = random_tensors(g);
  const std::string p = dir.file("m.safetensors");
  write_safetensors(p, views(first));
  const auto before = read_bytes(p);
  try {
    write_safetensors(p, views(second));
    FAIL() << "overwrote without being asked";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("already exists"), std::string::npos) << e.what();
  }
  EXPECT_EQ(read_bytes(p), before);
  write_safetensors(p, views(second), {}, /*overwrite=*/true);
  expect_same(SafetensorsSource({p}), second);
  // No temporary files left behind.
  int files = 0;
  for (const auto& f : std::filesystem::directory_iterator(dir.path)) files += f.is_regular_file();
  EXPECT_EQ(files, 1);
}

TEST(Safetensors, WriterRejectsBadTensorsAndLeavesNoFile) {
  testutil::TempDir dir;
  const std::string p = dir.file("bad.safetensors");
  const std::vector<uint8_t> eight(8);
  const auto expect_refused = [&](std::vector<TensorView> v, const char* why) {
    EXPECT_THROW(write_safetensors(p, std::span<const TensorView>(v)), Error) << why;
    EXPECT_FALSE(std::filesystem::exists(p)) << why;
  };
  expect_refused({{"x", DType::f32, {3}, eight}}, "size mismatch");
  expect_refused({{"x", DType::f32, {2}, eight}, {"x", DType::f32, {2}, eight}}, "duplicate name");
  expect_refused({{"", DType::f32, {2}, eight}}, "empty name");
  expect_refused({{"__metadata__", DType::f32, {2}, eight}}, "reserved name");
  expect_refused({{"x", DType::q4_0, {2}, eight}}, "block-quantized dtype");
  expect_refused({{"x", DType::u8, {-8}, eight}}, "negative dim");
  // A producer that returns the wrong number of bytes.
  std::vector<SafetensorsItem> items;
  items.push_back({"y", DType::f32, {4}, [] { return std::vector<uint8_t>(12); }});
  EXPECT_THROW(write_safetensors(p, std::move(items)), Error);
  EXPECT_FALSE(std::filesystem::exists(p));
  EXPECT_TRUE(std::filesystem::is_empty(dir.path));
}

TEST(Safetensors, LazyItemsAreProducedInOrderOfLayout) {
  testutil::TempDir dir;
  std::vector<SafetensorsItem> items;
  std::vector<std::string> produced;
  for (const char* n : {"b", "a"})
    items.push_back({n, DType::i32, {2}, [&produced, n] {
                       produced.emplace_back(n);
                       std::vector<uint8_t> v(8);
                       v[0] = static_cast<uint8_t>(n[0]);
                       return v;
                     }});
  items.push_back({"c", DType::i64, {1}, [&produced] {
                     produced.emplace_back("c");
                     return std::vector<uint8_t>(8, 7);
                   }});
  write_safetensors(dir.file("l.safetensors"), std::move(items));
  EXPECT_EQ(produced, (std::vector<std::string>{"c", "a", "b"}));  // widest dtype first, then by name
  const SafetensorsSource src({dir.file("l.safetensors")});
  ASSERT_NE(src.find("a"), nullptr);
  ASSERT_NE(src.find("b"), nullptr);
  EXPECT_EQ(src.find("a")->data[0], 'a');
  EXPECT_EQ(src.find("b")->data[0], 'b');
  EXPECT_EQ(src.find("c")->data[7], 7);
}
