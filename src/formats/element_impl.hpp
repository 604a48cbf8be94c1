// Inline element encoder shared by the block quantizers (internal header).
#pragma once
#include <bit>
#include <cmath>
#include <cstdint>

#include "micromix/mx.hpp"

namespace micromix::mx {

// 256-entry decode table of a format (codes above the format's width map like their low bits).
const float* decode_table(ElemFormat f);

// Rounds a non-negative r (< 2^24) to an integer: ties to even or away from zero. Exact.
inline uint32_t round_int(float r, Rounding mode) {
  const float fl = std::floor(r);
  const float fr = r - fl;  // exact
  const uint32_t q = static_cast<uint32_t>(fl);
  const bool up = fr > 0.5f || (fr == 0.5f && (mode == Rounding::away || (q & 1u)));
  return q + (up ? 1u : 0u);
}

// Encodes v (already divided by the block scale, not NaN) to an element code: nearest on the
// element grid, saturating to +-max normal, sign kept (int8 aside, which has no -0).
inline uint8_t encode_scaled(ElemFormat f, float v, Rounding mode) {
  const ElemInfo& I = info(f);
  const uint32_t bits = std::bit_cast<uint32_t>(v);
  const uint32_t sign = bits >> 31;
  const float a = std::bit_cast<float>(bits & 0x7fffffffu);
  if (f == ElemFormat::int8) {
    uint32_t q = a < I.max_normal ? round_int(a * 64.0f, mode) : 127u;
    if (q > 127u) q = 127u;
    const int s = sign ? -static_cast<int>(q) : static_cast<int>(q);
    return static_cast<uint8_t>(static_cast<int8_t>(s));
  }
  uint32_t mag;
  if (!(a < I.max_normal)) {
    mag = I.max_code;
  } else {
    const int emin = 1 - I.bias;  // exponent of the smallest normal
    int e = static_cast<int>((bits >> 23) & 0xffu) - 127;
    if (e < emin) e = emin;
    // a / 2^(e - mbits) is exact (power of two) and < 2^(mbits+1).
    const float r = a * std::bit_cast<float>(static_cast<uint32_t>(127 + I.mbits - e) << 23);
    const uint32_t q = round_int(r, mode);
    // Normal codes are ((e - emin + 1) << m) | (q - 2^m) == ((e - emin) << m) + q; the subnormal
    // binade (e == emin, q < 2^m) and a carry into the next binade fall out of the same sum.
    mag = (static_cast<uint32_t>(e - emin) << I.mbits) + q;
    if (mag > I.max_code) mag = I.max_code;
  }
  return static_cast<uint8_t>(mag | (sign << (I.bits - 1)));
}

}  // namespace micromix::mx
