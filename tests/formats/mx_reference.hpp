// An independent double-precision reference of the MX formats, written from the OCP v1.0 format
// tables (DESIGN.md section 2) without using the library's tables or encoder.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "micromix/mx.hpp"

namespace mxref {

using micromix::mx::ElemFormat;
using micromix::mx::Rounding;
using micromix::mx::ScaleRule;

struct Def {
  int bits, ebits, mbits, bias, emax;
  double max_normal;
};

inline Def def(ElemFormat f) {
  switch (f) {
    case ElemFormat::fp4_e2m1: return {4, 2, 1, 1, 2, 6.0};
    case ElemFormat::fp6_e2m3: return {6, 2, 3, 1, 2, 7.5};
    case ElemFormat::fp6_e3m2: return {6, 3, 2, 3, 4, 28.0};
    case ElemFormat::fp8_e4m3: return {8, 4, 3, 7, 8, 448.0};
    case ElemFormat::fp8_e5m2: return {8, 5, 2, 15, 15, 57344.0};
    case ElemFormat::int8: return {8, 0, 0, 0, 0, 127.0 / 64.0};
  }
  return {};
}

// Value of a code from the format definition; NaN for NaN codes, +-inf for E5M2 Inf.
inline double decode(ElemFormat f, unsigned code) {
  const Def d = def(f);
  if (f == ElemFormat::int8) {
    const int v = code >= 128 ? static_cast<int>(code) - 256 : static_cast<int>(code);
    return v / 64.0;
  }
  const int sign = (code >> (d.bits - 1)) & 1;
  const int e = (code >> d.mbits) & ((1 << d.ebits) - 1);
  const int m = code & ((1 << d.mbits) - 1);
  if (f == ElemFormat::fp8_e4m3 && e == 15 && m == 7) return std::numeric_limits<double>::quiet_NaN();
  if (f == ElemFormat::fp8_e5m2 && e == 31)
    return m ? std::numeric_limits<double>::quiet_NaN() : (sign ? -1.0 : 1.0) * std::numeric_limits<double>::infinity();
  double mag = e == 0 ? std::pow(2.0, 1 - d.bias) * (m / std::pow(2.0, d.mbits))
                      : std::pow(2.0, e - d.bias) * (1.0 + m / std::pow(2.0, d.mbits));
  return sign ? -mag : mag;
}

// Non-negative finite grid of a format as (value, code), ascending.
struct GridPoint {
  double v;
  unsigned code;
};
inline std::vector<GridPoint> grid(ElemFormat f) {
  std::vector<GridPoint> g;
  if (f == ElemFormat::int8) {
    for (unsigned k = 0; k <= 127; ++k) g.push_back({k / 64.0, k});
    return g;
  }
  const Def d = def(f);
  for (unsigned c = 0; c < (1u << (d.bits - 1)); ++c) {
    const double v = decode(f, c);
    if (std::isfinite(v)) g.push_back({v, c});
  }
  std::sort(g.begin(), g.end(), [](auto a, auto b) { return a.v < b.v; });
  return g;
}

// Nearest grid point to y >= 0 under the rounding mode; saturates above the largest.
inline unsigned round_magnitude(const std::vector<GridPoint>& g, double y, Rounding r) {
  if (y >= g.back().v) return g.back().code;
  size_t hi = 1;
  while (g[hi].v < y) ++hi;
  const GridPoint lo_p = g[hi - 1], hi_p = g[hi];
  if (y == hi_p.v) return hi_p.code;
  const double dl = y - lo_p.v, dh = hi_p.v - y;
  if (dl < dh) return lo_p.code;
  if (dh < dl) return hi_p.code;
  if (r == Rounding::away) return hi_p.code;
  // Ties to even: the neighbour whose lowest mantissa bit (int8: lowest bit) is 0.
  return (lo_p.code & 1u) == 0 ? lo_p.code : hi_p.code;
}

inline unsigned with_sign(ElemFormat f, unsigned mag, bool neg) {
  if (!neg) return mag;
  if (f == ElemFormat::int8) return static_cast<unsigned>(256 - mag) & 0xFFu;  // -0 does not exist
  return mag | (1u << (def(f).bits - 1));
}

struct BlockResult {
  std::vector<uint8_t> codes;
  uint8_t scale;
};

inline BlockResult quantize_block(ElemFormat f, ScaleRule rule, Rounding r, const float* x) {
  const Def d = def(f);
  BlockResult out{std::vector<uint8_t>(32, 0), 0};
  double amax = 0;
  for (int i = 0; i < 32; ++i) {
    if (!std::isfinite(x[i])) {
      out.scale = 0xFF;
      return out;
    }
    amax = std::max(amax, std::fabs(static_cast<double>(x[i])));
  }
  int shared;
  if (amax == 0) {
    shared = rule == ScaleRule::ocp ? -127 : 0;
  } else if (rule == ScaleRule::ocp) {
    int e;
    std::frexp(amax, &e);  // amax = m * 2^e, m in [0.5, 1)
    shared = (e - 1) - d.emax;
  } else {
    shared = -400;
    while (amax > d.max_normal * std::pow(2.0, shared)) ++shared;
  }
  shared = std::clamp(shared, -127, 127 - d.emax);  // keep max_normal * scale finite in float32
  out.scale = static_cast<uint8_t>(shared + 127);
  const auto g = grid(f);
  for (int i = 0; i < 32; ++i) {
    const double y = static_cast<double>(x[i]) / std::pow(2.0, shared);
    out.codes[i] = static_cast<uint8_t>(with_sign(f, round_magnitude(g, std::fabs(y), r), std::signbit(x[i])));
  }
  return out;
}

}  // namespace mxref
