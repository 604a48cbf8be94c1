// OCP Microscaling (MX) v1.0 number formats: element codecs, the E8M0 shared scale, and block
// quantization along the contiguous dimension in blocks of 32.
//
// Policies (where the OCP spec speaks we follow it; where it is silent the choice is ours):
//  - Sign is always kept: a negative value that rounds to zero becomes the format's -0 code.
//  - Elements saturate to +-max normal (the spec's MX conversion; also for E5M2, which has Inf).
//  - Scale rule `ocp`: shared_exp = floor(log2(amax)) - emax_elem, taken from the float's exponent
//    bits (subnormal float32 inputs included), clamped to [-127, 127]. The block max may clip.
//  - Scale rule `ceil` (MicroMix's code): shared_exp = ceil(log2(amax / qmax)), clamped to
//    [-127, 127 - emax_elem] so that max_normal * scale stays finite in float32; qmax = the
//    element's max normal (6, 7.5, 28, 448, 57344, 127/64). Never clips unless a clamp bites
//    (amax within a factor 2 of FLT_MAX, or below 2^-127 * min_subnormal).
//  - All-zero block (amax == 0, signed zeros included): scale code 0 (2^-127) under `ocp`, which
//    is where the spec's clamp lands, and code 127 (2^0) under `ceil`, a fixed scale as in the
//    authors' code. Elements are the signed zero codes, so dequantization returns +-0 exactly.
//  - A block holding NaN or +-Inf gets the NaN scale code 0xFF (the spec: a NaN scale makes every
//    element of the block NaN); its element codes are 0. Dequantization returns NaN for the block.
//  - Rounding is to nearest on the element grid, ties to even (default, what hardware cvt does)
//    or ties away from zero.
#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace micromix::mx {

inline constexpr int kBlock = 32;  // elements sharing one E8M0 scale

enum class ElemFormat : uint8_t { fp4_e2m1, fp6_e2m3, fp6_e3m2, fp8_e4m3, fp8_e5m2, int8 };
inline constexpr ElemFormat kAllFormats[] = {ElemFormat::fp4_e2m1, ElemFormat::fp6_e2m3,
                                             ElemFormat::fp6_e3m2, ElemFormat::fp8_e4m3,
                                             ElemFormat::fp8_e5m2, ElemFormat::int8};

enum class ScaleRule : uint8_t { ocp, ceil };
enum class Rounding : uint8_t { even, away };

struct ElemInfo {
  std::string_view name;      // CLI name of the MX format, e.g. "mxfp4"
  std::string_view elem;      // element name, e.g. "E2M1"
  int bits;                   // bits per element code
  int ebits, mbits;           // exponent and mantissa field widths (int8: 0 and 6 fraction bits)
  int bias;                   // exponent bias (int8: none)
  int emax;                   // exponent of the largest normal, used by the ocp scale rule
  float max_normal;           // largest finite magnitude
  float min_subnormal;        // smallest non-zero magnitude
  uint8_t max_code;           // code of +max_normal
  bool has_inf, has_nan;      // element-level Inf/NaN encodings (E5M2: both; E4M3: NaN only)
};

const ElemInfo& info(ElemFormat f);
std::optional<ElemFormat> parse_format(std::string_view name);  // "mxfp4", "mxfp6_e2m3", ...
std::optional<ScaleRule> parse_scale_rule(std::string_view name);
std::optional<Rounding> parse_rounding(std::string_view name);
std::string_view name(ScaleRule r);
std::string_view name(Rounding r);

// Bits per value including the shared scale: bits + 8/32.
inline double bits_per_value(ElemFormat f) { return info(f).bits + 8.0 / kBlock; }

// ---- element codecs ---------------------------------------------------------------------------
// decode: any code of the format's width (upper bits ignored) -> float (NaN/Inf where encoded).
float decode(ElemFormat f, uint8_t code);
// encode: a float already divided by the block scale -> code, rounded and saturated.
// NaN input gives the format's NaN code where it has one, else 0.
uint8_t encode(ElemFormat f, float v, Rounding r = Rounding::even);

// ---- E8M0 scale -------------------------------------------------------------------------------
inline constexpr uint8_t kScaleNaN = 0xFF;
float scale_value(uint8_t e8m0);  // 2^(code-127); NaN for 0xFF

// Scale code for a block with max magnitude amax (finite, >= 0).
uint8_t block_scale(ElemFormat f, ScaleRule rule, float amax);

// ---- blocks ---------------------------------------------------------------------------------
// Quantizes n values (n a multiple of 32) into one code per byte and one scale per 32 values.
void quantize(ElemFormat f, ScaleRule rule, Rounding r, std::span<const float> x,
              std::span<uint8_t> codes, std::span<uint8_t> scales);
// Inverse: codes (one per byte) and scales back to float.
void dequantize(ElemFormat f, std::span<const uint8_t> codes, std::span<const uint8_t> scales,
                std::span<float> out);

}  // namespace micromix::mx
