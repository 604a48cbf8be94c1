// Element codecs of the MX formats and the E8M0 scale rules.
#include <array>
#include <bit>
#include <cmath>
#include <limits>

#include "formats/element_impl.hpp"
#include "micromix/mx.hpp"

namespace micromix::mx {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

// name, elem, bits, ebits, mbits, bias, emax, max_normal, min_subnormal, max_code, inf, nan
constexpr ElemInfo kInfo[] = {
    {"mxfp4", "E2M1", 4, 2, 1, 1, 2, 6.0f, 0.5f, 0x07, false, false},
    {"mxfp6_e2m3", "E2M3", 6, 2, 3, 1, 2, 7.5f, 0.125f, 0x1F, false, false},
    {"mxfp6_e3m2", "E3M2", 6, 3, 2, 3, 4, 28.0f, 0.0625f, 0x1F, false, false},
    {"mxfp8_e4m3", "E4M3", 8, 4, 3, 7, 8, 448.0f, 0x1p-9f, 0x7E, false, true},
    {"mxfp8_e5m2", "E5M2", 8, 5, 2, 15, 15, 57344.0f, 0x1p-16f, 0x7B, true, true},
    // MXINT8: two's complement with an implicit 2^-6, symmetric range +-127/64 when quantizing.
    {"mxint8", "INT8", 8, 0, 6, 0, 0, 127.0f / 64.0f, 1.0f / 64.0f, 0x7F, false, false},
};

float decode_formula(ElemFormat f, uint8_t code) {
  const ElemInfo& I = info(f);
  const unsigned c = code & ((1u << I.bits) - 1u);
  if (f == ElemFormat::int8) return static_cast<float>(static_cast<int8_t>(c)) / 64.0f;
  const bool neg = (c >> (I.bits - 1)) & 1u;
  const unsigned exp = (c >> I.mbits) & ((1u << I.ebits) - 1u);
  const unsigned man = c & ((1u << I.mbits) - 1u);
  float v;
  if (f == ElemFormat::fp8_e4m3 && exp == 15 && man == 7) return kNaN;
  if (f == ElemFormat::fp8_e5m2 && exp == 31) {
    if (man != 0) return kNaN;
    v = kInf;
  } else if (exp == 0) {
    v = std::ldexp(static_cast<float>(man), 1 - I.bias - I.mbits);
  } else {
    v = std::ldexp(static_cast<float>((1u << I.mbits) + man), static_cast<int>(exp) - I.bias - I.mbits);
  }
  return neg ? -v : v;
}

struct DecodeTables {
  std::array<std::array<float, 256>, std::size(kInfo)> t{};
  DecodeTables() {
    for (ElemFormat f : kAllFormats)
      for (int c = 0; c < 256; ++c) t[static_cast<int>(f)][c] = decode_formula(f, static_cast<uint8_t>(c));
  }
};
const DecodeTables& tables() {
  static const DecodeTables tabs;
  return tabs;
}

}  // namespace

const ElemInfo& info(ElemFormat f) { return kInfo[static_cast<int>(f)]; }

const float* decode_table(ElemFormat f) { return tables().t[static_cast<int>(f)].data(); }

std::optional<ElemFormat> parse_format(std::string_view n) {
  for (ElemFormat f : kAllFormats)
    if (info(f).name == n) return f;
  if (n == "mxfp6") return ElemFormat::fp6_e3m2;  // the paper's MXFP6
  if (n == "mxfp8") return ElemFormat::fp8_e4m3;
  return std::nullopt;
}
std::optional<ScaleRule> parse_scale_rule(std::string_view n) {
  if (n == "ocp") return ScaleRule::ocp;
  if (n == "ceil") return ScaleRule::ceil;
  return std::nullopt;
}
std::optional<Rounding> parse_rounding(std::string_view n) {
  if (n == "even") return Rounding::even;
  if (n == "away") return Rounding::away;
  return std::nullopt;
}
std::string_view name(ScaleRule r) { return r == ScaleRule::ocp ? "ocp" : "ceil"; }
std::string_view name(Rounding r) { return r == Rounding::even ? "even" : "away"; }

float decode(ElemFormat f, uint8_t code) { return decode_table(f)[code & ((1u << info(f).bits) - 1u)]; }

uint8_t encode(ElemFormat f, float v, Rounding r) {
  if (std::isnan(v)) {
    if (f == ElemFormat::fp8_e4m3) return 0x7F;
    if (f == ElemFormat::fp8_e5m2) return 0x7F;
    return 0;
  }
  return encode_scaled(f, v, r);
}

float scale_value(uint8_t e8m0) {
  if (e8m0 == kScaleNaN) return kNaN;
  return std::ldexp(1.0f, static_cast<int>(e8m0) - 127);
}

uint8_t block_scale(ElemFormat f, ScaleRule rule, float amax) {
  const ElemInfo& I = info(f);
  if (!(amax > 0.0f)) return rule == ScaleRule::ocp ? 0 : 127;
  int e;
  if (rule == ScaleRule::ocp) {
    // floor(log2(amax)) from the exponent bits: exact, also for subnormal float32.
    e = std::ilogb(amax) - I.emax;
  } else {
    // Smallest e with amax <= qmax * 2^e; the products are exact in double.
    const double q = I.max_normal;
    e = std::ilogb(amax) - std::ilogb(q) - 1;
    while (static_cast<double>(amax) > std::ldexp(q, e)) ++e;
  }
  // The upper clamp 127 - emax keeps max_normal * scale finite in float32 (ceil could otherwise
  // pick 2^126 for E2M1 and decode 6 * 2^126 as Inf); ocp never exceeds it.
  if (e < -127) e = -127;
  if (e > 127 - I.emax) e = 127 - I.emax;
  return static_cast<uint8_t>(e + 127);
}

}  // namespace micromix::mx
