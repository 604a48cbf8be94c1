// AVX2 row kernels (internal). Bit-identical to the scalar kernels in quantize.cpp; the tests run
// both on the same inputs.
#pragma once
#include <cstdint>

#include "micromix/mx.hpp"

#if defined(__x86_64__) || defined(_M_X64)
#define MICROMIX_X86 1
#else
#define MICROMIX_X86 0
#endif

namespace micromix::mx {
#if MICROMIX_X86
void quantize_row_avx2(ElemFormat f, ScaleRule rule, Rounding r, const float* x, int64_t n, uint8_t* packed,
                       uint8_t* scales);
void dequantize_row_fp4_avx2(const uint8_t* packed, const uint8_t* scales, int64_t n, float* out);
#endif
}  // namespace micromix::mx
