// `micromix mx`: the MX codecs from the command line.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "command.hpp"
#include "micromix/error.hpp"
#include "micromix/mx_pack.hpp"

namespace micromix::cli {
namespace {

struct RoundtripArgs {
  std::string format, scale_rule = "ocp", rounding = "even";
  int64_t cols = 0;
};

// Reads up to `want` bytes (fewer only at end of input).
size_t read_full(int fd, uint8_t* p, size_t want) {
  size_t got = 0;
  while (got < want) {
    const ssize_t r = ::read(fd, p + got, want - got);
    if (r == 0) break;
    if (r < 0) {
      if (errno == EINTR) continue;
      fail("reading stdin: {}", std::strerror(errno));
    }
    got += static_cast<size_t>(r);
  }
  return got;
}

void write_full(int fd, const uint8_t* p, size_t n) {
  while (n) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail("writing stdout: {}", std::strerror(errno));
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

void roundtrip(const RoundtripArgs& a) {
  const auto f = mx::parse_format(a.format);
  MM_CHECK(f, "unknown format '{}' (expected one of mxfp4 mxfp6_e2m3 mxfp6_e3m2 mxfp8_e4m3 mxfp8_e5m2 mxint8)",
           a.format);
  const auto rule = mx::parse_scale_rule(a.scale_rule);
  MM_CHECK(rule, "unknown scale rule '{}' (expected ocp or ceil)", a.scale_rule);
  const auto rounding = mx::parse_rounding(a.rounding);
  MM_CHECK(rounding, "unknown rounding '{}' (expected even or away)", a.rounding);
  MM_CHECK(a.cols > 0 && a.cols % mx::kBlock == 0, "--cols {} is not a positive multiple of {}", a.cols,
           mx::kBlock);
  // Stream in chunks of whole rows; the input must end on a row boundary.
  const int64_t chunk_rows = std::max<int64_t>(1, (int64_t{1} << 20) / a.cols);
  std::vector<float> in(static_cast<size_t>(chunk_rows * a.cols)), out(in.size());
  std::vector<uint8_t> packed(mx::packed_row_bytes(*f, a.cols)), scales(static_cast<size_t>(a.cols / mx::kBlock));
  uint64_t total_bytes = 0;
  for (;;) {
    const size_t got = read_full(0, reinterpret_cast<uint8_t*>(in.data()), in.size() * sizeof(float));
    total_bytes += got;
    const size_t row_bytes = static_cast<size_t>(a.cols) * sizeof(float);
    MM_CHECK(got % row_bytes == 0,
             "input is {} bytes, not a whole number of rows of {} float32 values ({} bytes each)", total_bytes,
             a.cols, row_bytes);
    const int64_t rows = static_cast<int64_t>(got / row_bytes);
    for (int64_t r = 0; r < rows; ++r) {
      mx::quantize_row(*f, *rule, *rounding, in.data() + r * a.cols, a.cols, packed.data(), scales.data());
      mx::dequantize_row(*f, packed.data(), scales.data(), a.cols, out.data() + r * a.cols);
    }
    write_full(1, reinterpret_cast<const uint8_t*>(out.data()), got);
    if (got < in.size() * sizeof(float)) break;
  }
}

void print_info() {
  fmt::print("{:<11} {:<5} {:>4} {:>5} {:>4} {:>5} {:>11} {:>13} {:>8}\n", "format", "elem", "bits", "bias",
             "emax", "bits*", "max normal", "min subnormal", "Inf/NaN");
  for (mx::ElemFormat f : mx::kAllFormats) {
    const mx::ElemInfo& I = mx::info(f);
    const std::string special = I.has_inf ? "both" : I.has_nan ? "NaN" : "none";
    fmt::print("{:<11} {:<5} {:>4} {:>5} {:>4} {:>5.2f} {:>11g} {:>13g} {:>8}\n", I.name, I.elem, I.bits,
               f == mx::ElemFormat::int8 ? std::string("-") : std::to_string(I.bias), I.emax, mx::bits_per_value(f),
               static_cast<double>(I.max_normal), static_cast<double>(I.min_subnormal), special);
  }
  fmt::print(
      "\nbits* = bits per value with the shared E8M0 scale (one byte per 32 elements).\n"
      "Scale: E8M0, 2^(code-127), code 0xFF = NaN. Blocks of 32 along the contiguous dimension.\n"
      "Scale rules: ocp  = 2^(floor(log2 amax) - emax), elements saturate to max normal\n"
      "             ceil = 2^ceil(log2(amax / max normal)) (MicroMix), never clips\n"
      "MXINT8 elements are two's complement with an implicit 2^-6; quantization is symmetric (+-127/64).\n");
}

void setup(CLI::App& app) {
  auto* mx_cmd = app.add_subcommand("mx", "MX number formats: round trips and format tables");
  mx_cmd->require_subcommand(1);
  auto args = std::make_shared<RoundtripArgs>();
  auto* rt = mx_cmd->add_subcommand(
      "roundtrip",
      "Quantize raw little-endian float32 from stdin (row-major, --cols columns) and write the dequantized "
      "float32 values to stdout");
  rt->add_option("--format,-f", args->format,
                 "mxfp4 | mxfp6_e2m3 | mxfp6_e3m2 | mxfp8_e4m3 | mxfp8_e5m2 | mxint8")
      ->required();
  rt->add_option("--cols,-c", args->cols, "values per row (a multiple of 32)")->required();
  rt->add_option("--scale-rule", args->scale_rule, "ocp (OCP spec) or ceil (MicroMix code)")->capture_default_str();
  rt->add_option("--rounding", args->rounding, "even (ties to even) or away (ties away from zero)")
      ->capture_default_str();
  rt->callback([args] { roundtrip(*args); });
  mx_cmd->add_subcommand("info", "Print each MX format's parameters and value range")->callback(print_info);
}

MICROMIX_COMMAND(setup);

}  // namespace
}  // namespace micromix::cli
