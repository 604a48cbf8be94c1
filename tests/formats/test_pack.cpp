// Pack/unpack and whole-matrix round trips, odd row counts and large K, float32 and bf16 outputs.
#include <gtest/gtest.h>

#include <random>

#include "micromix/bf16.hpp"
#include "micromix/mx_pack.hpp"

using namespace micromix::mx;

TEST(Pack, CodesRoundTripForEveryFormat) {
  std::mt19937 g(std::random_device{}());
  for (ElemFormat f : kAllFormats)
    for (int n : {32, 64, 96, 4096, 32 * 1001}) {
      std::vector<uint8_t> codes(static_cast<size_t>(n)), back(static_cast<size_t>(n), 0xEE);
      for (auto& c : codes) c = static_cast<uint8_t>(g() & ((1u << info(f).bits) - 1u));
      std::vector<uint8_t> packed(packed_row_bytes(f, n), 0xAB);
      pack_codes(f, codes, packed);
      unpack_codes(f, packed, back);
      EXPECT_EQ(codes, back) << info(f).name << " n=" << n;
    }
}

TEST(Pack, LayoutIsTheDocumentedOne) {
  std::vector<uint8_t> codes(32);
  for (int i = 0; i < 32; ++i) codes[i] = static_cast<uint8_t>(i);
  std::vector<uint8_t> p4(16), p6(24);
  std::vector<uint8_t> c4(32);
  for (int i = 0; i < 32; ++i) c4[i] = static_cast<uint8_t>(i & 15);
  pack_codes(ElemFormat::fp4_e2m1, c4, p4);
  EXPECT_EQ(p4[0], 0x10);  // element 0 low nibble, element 1 high nibble
  EXPECT_EQ(p4[1], 0x32);
  pack_codes(ElemFormat::fp6_e3m2, codes, p6);
  // 0 | 1<<6 | 2<<12 | 3<<18 = 0x0C2040, little-endian bytes 40 20 0C
  EXPECT_EQ(p6[0], 0x40);
  EXPECT_EQ(p6[1], 0x20);
  EXPECT_EQ(p6[2], 0x0C);
}

TEST(Pack, MatrixRoundTripOddRowsLargeK) {
  std::mt19937 g(std::random_device{}());
  std::normal_distribution<float> nd(0.0f, 3.0f);
  for (ElemFormat f : kAllFormats)
    for (auto [rows, cols] : {std::pair<int64_t, int64_t>{1, 32}, {7, 96}, {33, 4096}, {3, 32 * 700}}) {
      std::vector<float> x(static_cast<size_t>(rows * cols));
      for (auto& v : x) v = nd(g);
      const MxMatrix m = quantize_matrix(f, ScaleRule::ocp, Rounding::even, x, rows, cols);
      ASSERT_EQ(m.codes.size(), static_cast<size_t>(rows) * packed_row_bytes(f, cols));
      std::vector<float> y(x.size(), NAN);
      dequantize_matrix(m, y);
      std::vector<uint16_t> yb(x.size(), 0xFFFF);
      dequantize_matrix_bf16(m, yb);
      // Re-quantizing the dequantized values is exact: they are on the grid with the same scales
      // (ocp picks the same exponent because the block max keeps its binade or clips into it).
      const MxMatrix m2 = quantize_matrix(f, ScaleRule::ocp, Rounding::even, y, rows, cols);
      std::vector<float> y2(x.size(), NAN);
      dequantize_matrix(m2, y2);
      EXPECT_EQ(y, y2) << info(f).name << " " << rows << "x" << cols;
      for (size_t i = 0; i < x.size(); ++i) {
        ASSERT_EQ(micromix::bf16_to_float(yb[i]), micromix::bf16_to_float(micromix::float_to_bf16(y[i]))) << i;
        // Relative error bound of one block: half an element ulp at the block scale (saturation aside).
        ASSERT_TRUE(std::isfinite(y[i])) << i;
      }
    }
}
