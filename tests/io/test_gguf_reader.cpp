// GGUF reader: round trips of synthetic files, and hostile files that must fail with a message
// naming the problem (truncation at every length, bad magic/version, huge counts, bad offsets...).
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "io/gguf.hpp"
#include "io/gguf_writer.hpp"
#include "micromix/error.hpp"
#include "tools/cli_runner.hpp"

using namespace micromix;
namespace g = micromix::io::gguf;
namespace w = testutil::gguf;

namespace {

std::span<const uint8_t> as_bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::shared_ptr<g::File> parse(const std::string& s) { return g::File::from_memory(as_bytes(s), "test.gguf"); }

// Parses s and returns the error message; fails the test when parsing succeeds.
std::string parse_error(const std::string& s) {
  try {
    parse(s);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "parsed without error";
  return "";
}

#define EXPECT_HAS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << "message: " << (haystack)

std::vector<float> random_floats(size_t n) {
  std::mt19937 rng(std::random_device{}());
  std::normal_distribution<float> nd;
  std::vector<float> v(n);
  for (auto& x : v) x = nd(rng);
  return v;
}

// A small valid file: a few metadata kinds and two tensors, the last one ending the file.
w::Writer small_writer() {
  w::Writer wr;
  wr.set("general.architecture", w::string("llama"))
      .set("n", w::u32(7))
      .set("list", w::i32_array({1, -2, 3}))
      .set("words", w::string_array({"a", "bc"}));
  wr.tensor("a.weight", {4, 2}, g::kGgmlF32, w::f32_bytes(random_floats(8)));
  wr.tensor("b.weight", {3}, g::kGgmlF32, w::f32_bytes(random_floats(3)));
  return wr;
}

}  // namespace

TEST(GgufReader, RoundTripsEveryMetadataTypeAndTensors) {
  w::Writer wr;
  wr.set("u8", w::scalar<uint8_t>(w::U8, 200))
      .set("i8", w::scalar<int8_t>(w::I8, -100))
      .set("u16", w::scalar<uint16_t>(w::U16, 60000))
      .set("i16", w::scalar<int16_t>(w::I16, -30000))
      .set("u32", w::u32(4000000000u))
      .set("i32", w::i32(-2000000000))
      .set("u64", w::u64(1ull << 60))
      .set("i64", w::scalar<int64_t>(w::I64, -(1ll << 60)))
      .set("f32", w::f32(0.15625f))
      .set("f64", w::f64(-1e300))
      .set("yes", w::boolean(true))
      .set("no", w::boolean(false))
      .set("str", w::string("héllo\nworld"))
      .set("empty", w::string(""))
      .set("ints", w::i32_array({5, -6, 7}))
      .set("u16s", w::array(w::U16, {w::scalar<uint16_t>(w::U16, 1), w::scalar<uint16_t>(w::U16, 65535)}))
      .set("floats", w::array(w::F32, {w::f32(1.5f), w::f32(-2.0f)}))
      .set("strs", w::string_array({"x", "", "yz"}))
      .set("nested", w::array(w::ARRAY, {w::i32_array({1, 2}), w::i32_array({}), w::i32_array({3})}))
      .set("no_items", w::array(w::STRING, {}));
  const auto x = random_floats(6 * 4);
  std::string q8(34 * 2, '\0');
  for (auto& c : q8) c = static_cast<char>(std::random_device{}());
  wr.tensor("x.weight", {4, 6}, g::kGgmlF32, w::f32_bytes(x));
  wr.tensor("q.weight", {64}, g::kGgmlQ8_0, q8);
  wr.tensor("odd", {3}, g::kGgmlF32, w::f32_bytes({1, 2, 3}));  // 12 bytes: next tensor padded to 32
  wr.tensor("h", {2, 1, 1, 1}, g::kGgmlF16, std::string("\x00\x3c\x00\xc0", 4));
  const std::string file = wr.build();
  const auto f = parse(file);

  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->alignment(), 32u);
  EXPECT_EQ(f->metadata().size(), wr.kv.size());
  EXPECT_EQ(f->metadata()[0].first, "u8");  // file order kept
  EXPECT_EQ(f->find("u8")->as_int("u8"), 200);
  EXPECT_EQ(f->find("i8")->as_int("i8"), -100);
  EXPECT_EQ(f->find("u16")->as_int("u16"), 60000);
  EXPECT_EQ(f->find("i16")->as_int("i16"), -30000);
  EXPECT_EQ(f->find("u32")->as_int("u32"), 4000000000ll);
  EXPECT_EQ(f->find("i32")->as_int("i32"), -2000000000);
  EXPECT_EQ(f->find("u64")->as_int("u64"), 1ll << 60);
  EXPECT_EQ(f->find("i64")->as_int("i64"), -(1ll << 60));
  EXPECT_EQ(f->find("f32")->as_float("f32"), 0.15625);
  EXPECT_EQ(f->find("f64")->as_float("f64"), -1e300);
  EXPECT_TRUE(f->find("yes")->as_bool("yes"));
  EXPECT_FALSE(f->find("no")->as_bool("no"));
  EXPECT_EQ(f->find("str")->as_string("str"), "héllo\nworld");
  EXPECT_EQ(f->find("empty")->as_string("empty"), "");
  EXPECT_EQ(f->find("ints")->int_array("ints"), (std::vector<int64_t>{5, -6, 7}));
  EXPECT_EQ(f->find("u16s")->int_array("u16s"), (std::vector<int64_t>{1, 65535}));
  EXPECT_EQ(f->find("floats")->elem, g::ValueType::f32);
  EXPECT_EQ(f->find("floats")->summary(), "[1.5, -2] (2 x f32)");
  EXPECT_EQ(f->find("strs")->strings, (std::vector<std::string_view>{"x", "", "yz"}));
  const g::Value* nested = f->find("nested");
  ASSERT_EQ(nested->items.size(), 3u);
  EXPECT_EQ(nested->items[0].int_array("n0"), (std::vector<int64_t>{1, 2}));
  EXPECT_TRUE(nested->items[1].int_array("n1").empty());
  EXPECT_EQ(nested->items[2].int_array("n2"), (std::vector<int64_t>{3}));
  EXPECT_EQ(f->find("no_items")->count, 0u);
  EXPECT_EQ(f->find("missing"), nullptr);
  EXPECT_THROW(f->find("str")->as_int("str"), Error);
  EXPECT_THROW(f->find("u32")->as_string("u32"), Error);
  EXPECT_THROW(f->find("floats")->int_array("floats"), Error);

  ASSERT_EQ(f->tensors().size(), 4u);
  const g::TensorInfo* t = f->find_tensor("x.weight");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->ne, (std::vector<int64_t>{4, 6}));
  EXPECT_EQ(t->dtype, DType::f32);
  EXPECT_EQ(t->nbytes, 96u);
  const auto xd = f->tensor_data(*t);
  ASSERT_EQ(xd.size(), 96u);
  EXPECT_EQ(std::memcmp(xd.data(), x.data(), 96), 0);
  const g::TensorInfo* q = f->find_tensor("q.weight");
  EXPECT_EQ(q->dtype, DType::q8_0);
  EXPECT_EQ(q->nbytes, 68u);
  EXPECT_EQ(std::memcmp(f->tensor_data(*q).data(), q8.data(), 68), 0);
  EXPECT_EQ(f->find_tensor("h")->offset % 32, 0u);
  EXPECT_EQ(f->find_tensor("h")->ne.size(), 4u);
  EXPECT_EQ(f->data_offset() % 32, 0u);
}

TEST(GgufReader, CustomAlignmentIsHonoured) {
  w::Writer wr;
  wr.alignment = 64;
  wr.set("general.alignment", w::u32(64));
  wr.tensor("a", {3}, g::kGgmlF32, w::f32_bytes({1, 2, 3}));
  wr.tensor("b", {2}, g::kGgmlF32, w::f32_bytes({4, 5}));
  const std::string s = wr.build();
  const auto f = parse(s);
  EXPECT_EQ(f->alignment(), 64u);
  EXPECT_EQ(f->data_offset() % 64, 0u);
  EXPECT_EQ(f->find_tensor("b")->offset, 64u);
  float v[2];
  std::memcpy(v, f->tensor_data(*f->find_tensor("b")).data(), 8);
  EXPECT_EQ(v[0], 4.0f);
  EXPECT_EQ(v[1], 5.0f);
}

TEST(GgufReader, OpensFilesFromDiskAndRejectsBadPaths) {
  testutil::TempDir dir;
  const std::string s = small_writer().build();
  testutil::write_file(dir.file("m.gguf"), s);
  const auto f = g::File::open(dir.file("m.gguf"));
  EXPECT_EQ(f->size(), s.size());
  EXPECT_EQ(f->tensors().size(), 2u);
  EXPECT_TRUE(g::has_gguf_magic(dir.file("m.gguf")));
  testutil::write_file(dir.file("empty.gguf"), "");
  EXPECT_FALSE(g::has_gguf_magic(dir.file("empty.gguf")));
  for (const std::string& bad : {dir.file("missing.gguf"), dir.file("empty.gguf"), dir.path.string()}) {
    try {
      g::File::open(bad);
      ADD_FAILURE() << bad;
    } catch (const Error& e) {
      EXPECT_HAS(e.what(), bad);
    }
  }
}

TEST(GgufReader, EveryTruncationThrows) {
  const std::string s = small_writer().build();
  for (size_t len = 0; len < s.size(); ++len) {
    // A fresh heap copy of exactly len bytes, so an over-read would be out of bounds.
    std::vector<uint8_t> prefix(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(len));
    EXPECT_THROW(g::File::from_memory(prefix), Error) << "prefix of " << len << " bytes";
  }
  EXPECT_NO_THROW(parse(s));
}

TEST(GgufReader, BadMagicAndVersion) {
  w::Writer wr = small_writer();
  wr.magic = "GGUG";
  EXPECT_HAS(parse_error(wr.build()), "bad magic");
  for (uint32_t v : {1u, 2u, 4u, 0xFFFFFFFFu}) {
    wr = small_writer();
    wr.version = v;
    const std::string msg = parse_error(wr.build());
    EXPECT_HAS(msg, "unsupported GGUF version " + std::to_string(v));
    EXPECT_HAS(msg, "test.gguf");
  }
}

TEST(GgufReader, HugeCountsAndLengthsFailBeforeAllocating) {
  for (uint64_t n : {1ull << 40, ~0ull}) {
    w::Writer wr = small_writer();
    wr.n_kv_override = n;
    EXPECT_HAS(parse_error(wr.build()), "metadata count");
    wr = small_writer();
    wr.n_tensors_override = n;
    EXPECT_HAS(parse_error(wr.build()), "tensor count");
  }
  // One more tensor than described: the reader reads the data section's padding as a tensor info.
  w::Writer more = small_writer();
  more.n_tensors_override = 3;
  EXPECT_HAS(parse_error(more.build()), "tensor");

  // A string claiming 2^62 bytes.
  w::Bytes b;
  b.put<uint64_t>(1ull << 62);
  w::Writer wr;
  wr.set("s", {w::STRING, b.s + "abc"});
  EXPECT_HAS(parse_error(wr.build()), "exceeds");
  // Arrays claiming more elements than bytes remain, for each element kind.
  for (uint32_t elem : {w::U8, w::U64, w::STRING, w::ARRAY}) {
    w::Bytes a;
    a.put<uint32_t>(elem).put<uint64_t>(1ull << 61);
    w::Writer wa;
    wa.set("arr", {w::ARRAY, a.s + std::string(64, '\0')});
    EXPECT_HAS(parse_error(wa.build()), "array of 2305843009213693952");
  }
  // A key of ~0 length.
  w::Bytes k;
  k.s = "GGUF";
  k.put<uint32_t>(3).put<uint64_t>(0).put<uint64_t>(1).put<uint64_t>(~0ull).s += std::string(64, 'k');
  EXPECT_HAS(parse_error(k.s), "key length");
}

TEST(GgufReader, DeepNestingAndBadValueTypes) {
  w::Val v = w::i32_array({1});
  for (int d = 0; d < 20; ++d) v = w::array(w::ARRAY, {v});
  w::Writer deep;
  deep.set("deep", v);
  EXPECT_HAS(parse_error(deep.build()), "nested deeper");
  w::Writer bad_type;
  bad_type.set("t", {13, std::string(8, '\0')});
  EXPECT_HAS(parse_error(bad_type.build()), "unknown value type 13");
  w::Writer bad_elem;
  bad_elem.set("t", w::array(99, {}));
  EXPECT_HAS(parse_error(bad_elem.build()), "unknown array element type 99");
  w::Writer dup;
  dup.set("k", w::u32(1)).set("k", w::u32(2));
  EXPECT_HAS(parse_error(dup.build()), "duplicate key");
}

TEST(GgufReader, BadTensorInfos) {
  {  // misaligned offset
    w::Writer wr = small_writer();
    wr.tensors[1].offset = 36;
    EXPECT_HAS(parse_error(wr.build()), "not a multiple of the alignment 32");
  }
  for (uint64_t off : {1ull << 40, ~0ull - 31, 32ull}) {  // beyond the end; offset + size overflowing; past by a bit
    w::Writer wr = small_writer();
    wr.tensors[1].offset = off;
    wr.tensors[1].omit_data = true;
    const std::string msg = parse_error(wr.build());
    EXPECT_HAS(msg, "tensor 'b.weight'");
    EXPECT_HAS(msg, "beyond end of file");
  }
  {  // unknown and unsupported types
    w::Writer wr = small_writer();
    wr.tensors[0].ggml_type = 99;
    EXPECT_HAS(parse_error(wr.build()), "unknown tensor type 99");
    wr.tensors[0].ggml_type = 6;  // q5_0
    EXPECT_HAS(parse_error(wr.build()), "q5_0");
  }
  {  // dims
    w::Writer wr = small_writer();
    wr.tensors[0].ne = {1, 1, 1, 1, 8};
    EXPECT_HAS(parse_error(wr.build()), "n_dims 5");
    wr.tensors[0].ne = {};
    EXPECT_HAS(parse_error(wr.build()), "n_dims 0");
    wr.tensors[0].ne = {1ull << 62, 1ull << 62};
    EXPECT_HAS(parse_error(wr.build()), "overflows");
    wr.tensors[0].ne = {~0ull};
    EXPECT_HAS(parse_error(wr.build()), "negative");
  }
  {  // a block type whose rows do not hold whole blocks
    w::Writer wr;
    wr.tensor("q", {48}, g::kGgmlQ8_0, std::string(51, '\0'));
    EXPECT_HAS(parse_error(wr.build()), "not a multiple of the 32-element q8_0 block");
  }
  {  // duplicate tensor name
    w::Writer wr = small_writer();
    wr.tensors[1].name = "a.weight";
    EXPECT_HAS(parse_error(wr.build()), "duplicate tensor name");
  }
  {  // bad alignment values and types
    for (uint32_t a : {0u, 3u, 48u, 1u << 30}) {
      w::Writer wr = small_writer();
      wr.set("general.alignment", w::u32(a));
      EXPECT_HAS(parse_error(wr.build()), "general.alignment");
    }
    w::Writer wr = small_writer();
    wr.set("general.alignment", w::string("32"));
    EXPECT_HAS(parse_error(wr.build()), "must be a u32");
  }
}

TEST(GgufReader, RandomCorruptionNeverCrashes) {
  // Flip random bytes of a valid file: parsing may succeed or throw Error, nothing else.
  const std::string s = small_writer().build();
  std::mt19937 rng(std::random_device{}());
  for (int trial = 0; trial < 2000; ++trial) {
    std::vector<uint8_t> b(s.begin(), s.end());
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) b[rng() % b.size()] = static_cast<uint8_t>(rng());
    try {
      const auto f = g::File::from_memory(b);
      for (const auto& t : f->tensors()) EXPECT_LE(f->data_offset() + t.offset + t.nbytes, b.size());
    } catch (const Error&) {
    }
  }
}
