// to_float for every stored type against independent references: each block is ENCODED here from
// random quantized values and scales following ggml's block definitions (ggml-common.h), and the
// decoder must return exactly scale * value (+ min), computed in the same float operation order.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <vector>

#include "micromix/bf16.hpp"
#include "micromix/error.hpp"
#include "micromix/tensor.hpp"

using namespace micromix;

namespace {

std::mt19937& rng() {
  static std::mt19937 g(std::random_device{}());
  return g;
}
int rand_int(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng()); }

// IEEE binary16 -> float from the definition: (-1)^s * 2^(e-15) * (1 + m/1024), subnormals m * 2^-24.
float half_ref(uint16_t h) {
  const int s = h >> 15, e = (h >> 10) & 31, m = h & 1023;
  const float sign = s ? -1.0f : 1.0f;
  if (e == 31) return m ? std::nanf("") : sign * INFINITY;
  if (e == 0) return sign * std::ldexp(static_cast<float>(m), -24);
  return sign * std::ldexp(1.0f + static_cast<float>(m) / 1024.0f, e - 15);
}

// A random finite fp16 scale of moderate magnitude (either sign), and its float value.
uint16_t rand_half_scale() {
  const int e = rand_int(5, 20), m = rand_int(0, 1023), s = rand_int(0, 1);
  return static_cast<uint16_t>((s << 15) | (e << 10) | m);
}

void put_u16(std::vector<uint8_t>& b, size_t at, uint16_t v) {
  b[at] = static_cast<uint8_t>(v & 0xFF);
  b[at + 1] = static_cast<uint8_t>(v >> 8);
}

TensorView view(DType t, std::vector<int64_t> shape, const std::vector<uint8_t>& bytes) {
  TensorView v;
  v.name = "test.weight";
  v.dtype = t;
  v.shape = std::move(shape);
  v.data = bytes;
  return v;
}

// One encoded block: its bytes and the values it must decode to.
struct Block {
  std::vector<uint8_t> bytes;
  std::vector<float> want;
};

Block enc_q4_0() {
  Block b{std::vector<uint8_t>(18), std::vector<float>(32)};
  const uint16_t d = rand_half_scale();
  put_u16(b.bytes, 0, d);
  for (int e = 0; e < 32; ++e) {
    const int q = rand_int(0, 15);  // stored value; represents q - 8
    uint8_t& byte = b.bytes[2 + e % 16];
    byte = static_cast<uint8_t>(e < 16 ? (byte & 0xF0) | q : (byte & 0x0F) | (q << 4));
    b.want[e] = half_ref(d) * static_cast<float>(q - 8);
  }
  return b;
}

Block enc_q4_1() {
  Block b{std::vector<uint8_t>(20), std::vector<float>(32)};
  const uint16_t d = rand_half_scale(), m = rand_half_scale();
  put_u16(b.bytes, 0, d);
  put_u16(b.bytes, 2, m);
  for (int e = 0; e < 32; ++e) {
    const int q = rand_int(0, 15);
    uint8_t& byte = b.bytes[4 + e % 16];
    byte = static_cast<uint8_t>(e < 16 ? (byte & 0xF0) | q : (byte & 0x0F) | (q << 4));
    b.want[e] = half_ref(d) * static_cast<float>(q) + half_ref(m);
  }
  return b;
}

Block enc_q8_0() {
  Block b{std::vector<uint8_t>(34), std::vector<float>(32)};
  const uint16_t d = rand_half_scale();
  put_u16(b.bytes, 0, d);
  for (int e = 0; e < 32; ++e) {
    const int q = rand_int(-128, 127);
    b.bytes[2 + e] = static_cast<uint8_t>(static_cast<int8_t>(q));
    b.want[e] = half_ref(d) * static_cast<float>(q);
  }
  return b;
}

// q4_K / q5_K: 8 sub-blocks of 32, each with a 6-bit scale and a 6-bit min, packed in 12 bytes:
// sub-blocks 0..3 keep scale/min in bytes j / j+4 (low 6 bits); sub-blocks 4..7 keep the low 4 bits
// of scale/min in the low/high nibble of byte j+4 and the top 2 bits in the top 2 bits of bytes
// j-4 (scale) / j (min).
void pack_k_scales(const int sc[8], const int mn[8], uint8_t* out12) {
  std::memset(out12, 0, 12);
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      out12[j] |= static_cast<uint8_t>(sc[j]);
      out12[j + 4] |= static_cast<uint8_t>(mn[j]);
    } else {
      out12[j + 4] |= static_cast<uint8_t>((sc[j] & 15) | ((mn[j] & 15) << 4));
      out12[j - 4] |= static_cast<uint8_t>((sc[j] >> 4) << 6);
      out12[j] |= static_cast<uint8_t>((mn[j] >> 4) << 6);
    }
  }
}

Block enc_q45_K(bool five_bits) {
  const size_t size = five_bits ? 176 : 144;
  Block b{std::vector<uint8_t>(size), std::vector<float>(256)};
  const uint16_t d = rand_half_scale(), dmin = rand_half_scale();
  put_u16(b.bytes, 0, d);
  put_u16(b.bytes, 2, dmin);
  int sc[8], mn[8];
  for (int j = 0; j < 8; ++j) sc[j] = rand_int(0, 63), mn[j] = rand_int(0, 63);
  pack_k_scales(sc, mn, b.bytes.data() + 4);
  uint8_t* qh = b.bytes.data() + 16;                   // q5_K only: bit `sub` of qh[l]
  uint8_t* qs = b.bytes.data() + (five_bits ? 48 : 16);  // 4 chunks of 32 bytes, 2 sub-blocks each
  for (int e = 0; e < 256; ++e) {
    const int sub = e / 32, l = e % 32;
    const int q = rand_int(0, five_bits ? 31 : 15);
    uint8_t& byte = qs[(sub / 2) * 32 + l];
    byte = static_cast<uint8_t>(sub % 2 == 0 ? (byte & 0xF0) | (q & 15) : (byte & 0x0F) | ((q & 15) << 4));
    if (five_bits && (q & 16)) qh[l] = static_cast<uint8_t>(qh[l] | (1 << sub));
    const float d1 = half_ref(d) * static_cast<float>(sc[sub]), m1 = half_ref(dmin) * static_cast<float>(mn[sub]);
    b.want[e] = d1 * static_cast<float>(q) - m1;
  }
  return b;
}

// q6_K: element e has scale sc[e/16]; its low 4 bits live in ql and its top 2 bits in qh:
// half = e/128, group = (e%128)/32, l = e%32; ql byte half*64 + l + (group odd ? 32 : 0), low nibble
// for groups 0/1 and high nibble for 2/3; qh byte half*32 + l, bits 2*group..2*group+1.
Block enc_q6_K() {
  Block b{std::vector<uint8_t>(210), std::vector<float>(256)};
  int8_t sc[16];
  for (auto& s : sc) s = static_cast<int8_t>(rand_int(-128, 127));
  std::memcpy(b.bytes.data() + 192, sc, 16);
  const uint16_t d = rand_half_scale();
  put_u16(b.bytes, 208, d);
  for (int e = 0; e < 256; ++e) {
    const int half = e / 128, group = (e % 128) / 32, l = e % 32;
    const int q = rand_int(0, 63);
    uint8_t& lo = b.bytes[static_cast<size_t>(half * 64 + l + (group % 2 ? 32 : 0))];
    lo = static_cast<uint8_t>(group < 2 ? (lo & 0xF0) | (q & 15) : (lo & 0x0F) | ((q & 15) << 4));
    b.bytes[static_cast<size_t>(128 + half * 32 + l)] |= static_cast<uint8_t>((q >> 4) << (2 * group));
    b.want[e] = half_ref(d) * static_cast<float>(sc[e / 16]) * static_cast<float>(q - 32);
  }
  return b;
}

Block enc_q8_K() {
  Block b{std::vector<uint8_t>(292), std::vector<float>(256)};
  const float d = std::ldexp(static_cast<float>(rand_int(1, 1 << 20)), rand_int(-40, -10));
  std::memcpy(b.bytes.data(), &d, 4);
  for (int e = 0; e < 256; ++e) {
    const int q = rand_int(-128, 127);
    b.bytes[4 + e] = static_cast<uint8_t>(static_cast<int8_t>(q));
    b.want[e] = d * static_cast<float>(q);
  }
  return b;  // bsums are not used when dequantizing
}

Block encode(DType t) {
  switch (t) {
    case DType::q4_0: return enc_q4_0();
    case DType::q4_1: return enc_q4_1();
    case DType::q8_0: return enc_q8_0();
    case DType::q4_K: return enc_q45_K(false);
    case DType::q5_K: return enc_q45_K(true);
    case DType::q6_K: return enc_q6_K();
    case DType::q8_K: return enc_q8_K();
    default: ADD_FAILURE() << "no encoder"; return {};
  }
}

const DType kBlockTypes[] = {DType::q4_0, DType::q4_1, DType::q8_0, DType::q4_K,
                             DType::q5_K, DType::q6_K, DType::q8_K};

}  // namespace

TEST(TensorDequant, BlockTypesMatchIndependentEncoder) {
  for (DType t : kBlockTypes) {
    const int64_t block = (t == DType::q4_0 || t == DType::q4_1 || t == DType::q8_0) ? 32 : 256;
    for (int64_t rows : {1, 3}) {
      for (int64_t blocks_per_row : {1, 2, 5}) {
        std::vector<uint8_t> bytes;
        std::vector<float> want;
        for (int64_t i = 0; i < rows * blocks_per_row; ++i) {
          Block b = encode(t);
          bytes.insert(bytes.end(), b.bytes.begin(), b.bytes.end());
          want.insert(want.end(), b.want.begin(), b.want.end());
        }
        const auto got = to_float(view(t, {rows, blocks_per_row * block}, bytes));
        ASSERT_EQ(got.size(), want.size());
        for (size_t i = 0; i < got.size(); ++i)
          ASSERT_EQ(got[i], want[i]) << dtype_name(t) << " element " << i << " rows " << rows;
      }
    }
  }
}

TEST(TensorDequant, LargeTensorUsesAllBlocks) {
  // Enough blocks to take the threaded path; every block must land in its own place.
  const int64_t n_blocks = 10000;
  std::vector<uint8_t> bytes;
  std::vector<float> want;
  for (int64_t i = 0; i < n_blocks; ++i) {
    Block b = enc_q8_0();
    bytes.insert(bytes.end(), b.bytes.begin(), b.bytes.end());
    want.insert(want.end(), b.want.begin(), b.want.end());
  }
  EXPECT_EQ(to_float(view(DType::q8_0, {n_blocks / 10, 320}, bytes)), want);
}

TEST(TensorDequant, F16EveryCodeMatchesDefinition) {
  std::vector<uint8_t> bytes(65536 * 2);
  for (uint32_t c = 0; c < 65536; ++c) {
    bytes[2 * c] = static_cast<uint8_t>(c & 0xFF);
    bytes[2 * c + 1] = static_cast<uint8_t>(c >> 8);
  }
  const auto got = to_float(view(DType::f16, {256, 256}, bytes));
  for (uint32_t c = 0; c < 65536; ++c) {
    const float want = half_ref(static_cast<uint16_t>(c));
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(got[c])) << c;
    } else {
      EXPECT_EQ(got[c], want) << c;
      EXPECT_EQ(std::signbit(got[c]), std::signbit(want)) << c;
    }
  }
}

TEST(TensorDequant, PlainTypes) {
  std::uniform_real_distribution<float> u(-100.0f, 100.0f);
  std::vector<float> x(60);
  for (auto& v : x) v = u(rng());
  std::vector<uint8_t> f32(x.size() * 4), bf(x.size() * 2), i32(x.size() * 4), i8(x.size());
  std::memcpy(f32.data(), x.data(), f32.size());
  EXPECT_EQ(to_float(view(DType::f32, {3, 4, 5}, f32)), x);
  for (size_t i = 0; i < x.size(); ++i) {
    const uint16_t h = float_to_bf16(x[i]);
    bf[2 * i] = static_cast<uint8_t>(h & 0xFF);
    bf[2 * i + 1] = static_cast<uint8_t>(h >> 8);
  }
  const auto got_bf = to_float(view(DType::bf16, {60}, bf));
  for (size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(got_bf[i], bf16_to_float(float_to_bf16(x[i])));
    EXPECT_NEAR(got_bf[i], x[i], std::fabs(x[i]) / 128);
  }
  std::vector<float> ints(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const int32_t v = static_cast<int32_t>(x[i] * 1000);
    std::memcpy(i32.data() + 4 * i, &v, 4);
    i8[i] = static_cast<uint8_t>(static_cast<int8_t>(x[i]));
    ints[i] = static_cast<float>(v);
  }
  EXPECT_EQ(to_float(view(DType::i32, {60}, i32)), ints);
  const auto got_i8 = to_float(view(DType::i8, {60}, i8));
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(got_i8[i], static_cast<float>(static_cast<int8_t>(x[i])));
  EXPECT_TRUE(to_float(view(DType::f32, {0, 7}, {})).empty());
}

TEST(TensorDequant, SizeMismatchAndBadShapesThrowWithTheTensorName) {
  for (DType t : kBlockTypes) {
    Block b = encode(t);
    const int64_t n = static_cast<int64_t>(b.want.size());
    std::vector<uint8_t> shorter(b.bytes.begin(), b.bytes.end() - 1), longer = b.bytes;
    longer.push_back(0);
    for (const auto* bytes : {&shorter, &longer}) {
      try {
        to_float(view(t, {n}, *bytes));
        ADD_FAILURE() << dtype_name(t) << ": no error for a size mismatch";
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("test.weight"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("expected " + std::to_string(b.bytes.size())), std::string::npos)
            << e.what();
      }
    }
    // The innermost dimension must hold whole blocks (blocks never straddle rows).
    EXPECT_THROW(to_float(view(t, {2, n / 2}, b.bytes)), Error) << dtype_name(t);
  }
  std::vector<uint8_t> four(4);
  EXPECT_THROW(to_float(view(DType::f32, {2}, four)), Error);
  EXPECT_THROW(to_float(view(DType::f32, {-1, -4}, four)), Error);
  EXPECT_THROW(to_float(view(DType::f32, {INT64_MAX, 4}, four)), Error);
}

TEST(Tensor, NamesAndNumel) {
  EXPECT_EQ(dtype_name(DType::q4_1), "q4_1");
  EXPECT_EQ(dtype_name(DType::q6_K), "q6_K");
  EXPECT_EQ(dtype_name(DType::bf16), "bf16");
  TensorView v;
  v.shape = {3, 5, 7};
  EXPECT_EQ(v.numel(), 105);
  v.shape = {};
  EXPECT_EQ(v.numel(), 1);  // a scalar
}

TEST(Tensor, GetNamesTheMissingTensor) {
  struct MapSource : TensorSource {
    std::map<std::string, TensorView, std::less<>> m;
    std::vector<std::string> names() const override {
      std::vector<std::string> n;
      for (auto& [k, v] : m) n.push_back(k);
      return n;
    }
    const TensorView* find(std::string_view name) const override {
      auto it = m.find(name);
      return it == m.end() ? nullptr : &it->second;
    }
  } src;
  src.m["a.weight"].name = "a.weight";
  EXPECT_EQ(&src.get("a.weight"), &src.m["a.weight"]);
  try {
    src.get("blk.7.attn_q.weight");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("blk.7.attn_q.weight"), std::string::npos) << e.what();
  }
}
