// Bit-level helpers shared by the decode and prefill kernels' element decoders.
#pragma once
#include <cstdint>

namespace micromix::cuda {

// 4 FP6 codes (6-bit fields of the low 24 bits of x; higher bits ignored) -> 4 bytes s00mmmmm, code
// i in byte i: its sign at bit 7, its 5 magnitude bits low. Three moves, each "t = y & M; y += t * k"
// (the masked bits move left by log2(k + 1) into zero bits; LOP3 + IMAD, so half the work goes to the
// FMA pipe): codes 2, 3 up 4 bits (two codes per 16-bit half), the odd codes up 2 (one per byte),
// the signs up 2 (bit 5 to 7). 7 instructions where a shift and mask per distance took 9, and the
// byte-by-byte spread of session 5 ~19 with the sign placement.
__device__ __forceinline__ uint32_t fp6x4_spread(uint32_t x) {
  uint32_t y = x & 0xFFFu;
  y += (x & 0xFFF000u) * 16u;       // codes 0, 1 at bits 0-11, codes 2, 3 at 16-27
  y += (y & 0x0FC00FC0u) * 3u;      // codes 1, 3 to bits 8-13, 24-29
  return y + (y & 0x20202020u) * 3u;  // each sign from bit 5 to bit 7 of its byte
}

// 4 FP6 codes -> 4 E4M3 codes of value * 2^-6 (E2M3: the spread bytes s00eemmm are already E4M3 of
// exponent 00ee) or * 2^-4 (E3M2: the magnitude doubled in place, s0eeemm0, by adding it to itself).
__device__ __forceinline__ uint32_t fp6x4_to_e4m3(uint32_t x, bool e2m3) {
  const uint32_t b = fp6x4_spread(x);
  return e2m3 ? b : b + (b & 0x1F1F1F1Fu);
}

}  // namespace micromix::cuda
