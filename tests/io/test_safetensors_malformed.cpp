// Hostile safetensors files: every failure is a micromix::Error naming the problem, never a crash.
#include <gtest/gtest.h>

#include <random>

#include "micromix/error.hpp"
#include "micromix/safetensors.hpp"
#include "tools/cli_runner.hpp"

using namespace micromix;

namespace {

// A file image: the 8-byte length (given, or the header's real length) + header + data.
std::vector<uint8_t> image(const std::string& header, size_t data_bytes, std::optional<uint64_t> len = {}) {
  const uint64_t n = len.value_or(header.size());
  std::string f(8, '\0');
  for (int i = 0; i < 8; ++i) f[static_cast<size_t>(i)] = static_cast<char>(n >> (8 * i));
  f += header;
  f.append(data_bytes, '\x5a');
  return {f.begin(), f.end()};
}

// Expects parse_safetensors and SafetensorsSource to throw an Error whose message contains `want`.
void expect_error(const std::vector<uint8_t>& f, const std::string& want) {
  try {
    parse_safetensors(f, "test.safetensors");
    ADD_FAILURE() << "accepted; expected an error containing '" << want << "'";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(want), std::string::npos) << "message: " << msg;
    EXPECT_NE(msg.find("test.safetensors"), std::string::npos) << "message does not name the file: " << msg;
  }
  EXPECT_THROW(SafetensorsSource::from_bytes(f), Error);
}

std::string entry(const std::string& name, const std::string& dtype, const std::string& shape, uint64_t b,
                  uint64_t e) {
  return fmt::format(R"("{}":{{"dtype":"{}","shape":{},"data_offsets":[{},{}]}})", name, dtype, shape, b, e);
}

}  // namespace

TEST(SafetensorsMalformed, HandBuiltValidFileIsAccepted) {
  // Guards the helpers above: the malformed cases differ from this in one thing each.
  const auto f = image("{" + entry("a", "F32", "[2,3]", 0, 24) + "," + entry("b", "I64", "[]", 24, 32) +
                           R"(,"__metadata__":{"k":"v"}})",
                       32);
  const auto h = parse_safetensors(f, "ok");
  ASSERT_EQ(h.tensors.size(), 2u);
  EXPECT_EQ(h.metadata.at("k"), "v");
  const auto src = SafetensorsSource::from_bytes(f);
  ASSERT_NE(src->find("a"), nullptr);
  EXPECT_EQ(src->find("a")->data.size(), 24u);
  EXPECT_EQ(src->find("a")->data.data(), src->find("b")->data.data() - 24);
}

TEST(SafetensorsMalformed, HeaderLength) {
  expect_error({1, 2, 3}, "too short");
  expect_error({}, "too short");
  expect_error(image("{}", 0, uint64_t{3}), "past the end");
  expect_error(image("{}", 0, ~uint64_t{0}), "exceeds the limit");
  expect_error(image("{}", 0, kSafetensorsMaxHeader + 1), "exceeds the limit");
  expect_error(image("", 0), "not valid JSON");
}

TEST(SafetensorsMalformed, HeaderJson) {
  expect_error(image("{\"a\":", 0), "not valid JSON");
  expect_error(image("[1,2]", 0), "not an object");
  expect_error(image("\"x\"", 0), "not an object");
  expect_error(image("{\"a\":1}", 0), "not an object");
  expect_error(image("{} trailing", 0), "not valid JSON");
  expect_error(image("{\"\xff\":{}}", 0), "not valid JSON");  // invalid UTF-8
  expect_error(image("{" + entry("a", "F32", "[1]", 0, 4) + "," + entry("a", "F32", "[1]", 4, 8) + "}", 8),
               "appears twice");
  expect_error(image(R"({"__metadata__":[]})", 0), "__metadata__");
  expect_error(image(R"({"__metadata__":{"k":1}})", 0), "not a string");
}

TEST(SafetensorsMalformed, EntryFields) {
  expect_error(image(R"({"a":{"dtype":"F32","shape":[1]}})", 4), "data_offsets");
  expect_error(image(R"({"a":{"shape":[1],"data_offsets":[0,4]}})", 4), "dtype");
  expect_error(image(R"({"a":{"dtype":"F32","data_offsets":[0,4]}})", 4), "shape");
  expect_error(image(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}})", 4), "unknown field 'x'");
  expect_error(image("{" + entry("a", "F64", "[1]", 0, 8) + "}", 8), "unsupported dtype 'F64'");
  expect_error(image("{" + entry("a", "f32", "[1]", 0, 4) + "}", 4), "unsupported dtype");
  expect_error(image("{" + entry("a", "F32", "[-1]", 0, 4) + "}", 4), "not a non-negative integer");
  expect_error(image("{" + entry("a", "F32", "[1.5]", 0, 4) + "}", 4), "not a non-negative integer");
  expect_error(image("{" + entry("a", "F32", "[\"1\"]", 0, 4) + "}", 4), "not a non-negative integer");
  expect_error(image("{" + entry("a", "F32", "1", 0, 4) + "}", 4), "shape");
  expect_error(image(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", 4), "data_offsets");
  expect_error(image(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}})", 8), "data_offsets");
  expect_error(image(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}})", 4), "data_offsets");
}

TEST(SafetensorsMalformed, OffsetsAndSizes) {
  expect_error(image("{" + entry("a", "F32", "[2]", 0, 8) + "}", 4), "inside the 4-byte data section");
  expect_error(image("{" + entry("a", "F32", "[1]", 8, 4) + "}", 8), "not a range");
  expect_error(image("{" + entry("a", "F32", "[3]", 0, 8) + "}", 16), "needs 12 bytes");
  expect_error(image("{" + entry("a", "BF16", "[2,2]", 0, 4) + "}", 16), "needs 8 bytes");
  expect_error(image("{" + entry("a", "F32", "[2]", 0, 8) + "," + entry("b", "F32", "[2]", 4, 12) + "}", 12),
               "overlap");
  expect_error(image("{" + entry("a", "U8", "[4]", 0, 4) + "," + entry("b", "U8", "[4]", 0, 4) + "}", 4), "overlap");
  // Dims whose product overflows 64 bits must not wrap around to a small size.
  expect_error(image("{" + entry("a", "F32", "[4294967296,4294967296,4]", 0, 0) + "}", 0), "too large");
  expect_error(image("{" + entry("a", "I64", "[2305843009213693952]", 0, 0) + "}", 0), "too large");
  expect_error(image("{" + entry("a", "F32", "[1]", 0, 18446744073709551615ULL) + "}", 4), "data section");
}

TEST(SafetensorsMalformed, EveryTruncationOfAValidFileFails) {
  std::mt19937 g(std::random_device{}());
  testutil::TempDir dir;
  std::vector<uint8_t> a(24), b(6);
  for (auto& x : a) x = static_cast<uint8_t>(g());
  for (auto& x : b) x = static_cast<uint8_t>(g());
  const std::vector<TensorView> ts = {{"a", DType::f32, {2, 3}, a}, {"b", DType::bf16, {3}, b}};
  write_safetensors(dir.file("v.safetensors"), std::span<const TensorView>(ts), {{"m", "x"}});
  const std::string s = testutil::read_file(dir.file("v.safetensors"));
  const std::vector<uint8_t> full(s.begin(), s.end());
  EXPECT_NO_THROW(parse_safetensors(full, "full"));
  for (size_t len = 0; len < full.size(); ++len) {
    const std::vector<uint8_t> cut(full.begin(), full.begin() + static_cast<long>(len));
    EXPECT_THROW(parse_safetensors(cut, "cut"), Error) << "prefix of " << len << " bytes";
    // Also as a real file through the memory-mapped reader.
    testutil::write_file(dir.file("cut.safetensors"), s.substr(0, len));
    EXPECT_THROW(SafetensorsSource({dir.file("cut.safetensors")}), Error) << "prefix of " << len << " bytes";
  }
}

TEST(SafetensorsMalformed, RandomByteFlipsNeverCrash) {
  std::mt19937 g(std::random_device{}());
  const auto f = image("{" + entry("a", "F32", "[2,3]", 0, 24) + "," + entry("b", "I64", "[]", 24, 32) + "}", 32);
  for (int trial = 0; trial < 2000; ++trial) {
    auto m = f;
    const int flips = 1 + static_cast<int>(g() % 4);
    for (int k = 0; k < flips; ++k) m[g() % m.size()] ^= static_cast<uint8_t>(1u << (g() % 8));
    try {
      const auto h = parse_safetensors(m, "flipped");
      for (const auto& e : h.tensors) EXPECT_LE(h.data_offset + e.end, m.size()) << e.name;  // views stay inside
    } catch (const Error&) {
    }
  }
}

TEST(SafetensorsMalformed, MissingAndOddFiles) {
  testutil::TempDir dir;
  EXPECT_THROW(SafetensorsSource({dir.file("nope.safetensors")}), Error);
  EXPECT_THROW(SafetensorsSource({dir.path.string()}), Error);  // a directory
  testutil::write_file(dir.file("empty.safetensors"), "");
  EXPECT_THROW(SafetensorsSource({dir.file("empty.safetensors")}), Error);
  EXPECT_THROW(SafetensorsSource(std::vector<std::string>{}), Error);
}
