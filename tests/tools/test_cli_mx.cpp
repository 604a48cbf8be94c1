// `micromix mx` end to end: the CLI's round trip equals the library's, bad input fails cleanly.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include <fmt/format.h>

#include "micromix/mx_pack.hpp"
#include "tools/cli_runner.hpp"

using namespace micromix::mx;
using testutil::run_cli;

namespace {
std::string floats_to_bytes(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}
}  // namespace

TEST(CliMx, RoundtripMatchesLibraryForEveryFormat) {
  testutil::TempDir dir;
  std::mt19937 g(std::random_device{}());
  std::normal_distribution<float> nd(0.0f, 2.0f);
  const int64_t rows = 5, cols = 96;
  std::vector<float> x(static_cast<size_t>(rows * cols));
  for (auto& v : x) v = nd(g);
  x[7] = 300.0f;  // an outlier
  testutil::write_file(dir.file("in.f32"), floats_to_bytes(x));
  for (ElemFormat f : kAllFormats)
    for (const char* rule : {"ocp", "ceil"})
      for (const char* rnd : {"even", "away"}) {
        const auto res = run_cli(fmt::format("mx roundtrip --format {} --cols {} --scale-rule {} --rounding {} < {} > {}",
                                             info(f).name, cols, rule, rnd, dir.file("in.f32"), dir.file("out.f32")));
        ASSERT_EQ(res.exit_code, 0) << res.out;
        const std::string out = testutil::read_file(dir.file("out.f32"));
        ASSERT_EQ(out.size(), x.size() * sizeof(float));
        const MxMatrix m = quantize_matrix(f, *parse_scale_rule(rule), *parse_rounding(rnd), x, rows, cols);
        std::vector<float> want(x.size());
        dequantize_matrix(m, want);
        EXPECT_EQ(std::memcmp(out.data(), want.data(), out.size()), 0) << info(f).name << " " << rule << " " << rnd;
      }
}

TEST(CliMx, BadInputGivesOneLineErrorAndNonZeroExit) {
  testutil::TempDir dir;
  testutil::write_file(dir.file("in.f32"), std::string(32 * 4 * 3 + 4, '\0'));  // 3 rows + 1 float
  struct Bad {
    std::string args, expect;
  };
  const Bad cases[] = {
      {"mx roundtrip --format mxfp4 --cols 33", "not a positive multiple of 32"},
      {"mx roundtrip --format mxfp5 --cols 32", "unknown format 'mxfp5'"},
      {"mx roundtrip --format mxfp4 --cols 32 --scale-rule floor", "unknown scale rule"},
      {"mx roundtrip --format mxfp4 --cols 32 --rounding up", "unknown rounding"},
      {"mx roundtrip --format mxfp4 --cols 32", "not a whole number of rows"},
  };
  for (const auto& c : cases) {
    const auto res = run_cli(c.args + " < " + dir.file("in.f32") + " > " + dir.file("out.f32"));
    EXPECT_NE(res.exit_code, 0) << c.args;
    EXPECT_NE(res.out.find(c.expect), std::string::npos) << c.args << " -> " << res.out;
    EXPECT_EQ(std::count(res.out.begin(), res.out.end(), '\n'), 1) << res.out;
  }
  EXPECT_NE(run_cli("mx roundtrip --cols 32 < /dev/null").exit_code, 0);  // missing --format
}

TEST(CliMx, InfoListsEveryFormat) {
  const auto res = run_cli("mx info");
  ASSERT_EQ(res.exit_code, 0);
  for (ElemFormat f : kAllFormats) EXPECT_NE(res.out.find(info(f).name), std::string::npos);
  EXPECT_NE(res.out.find("448"), std::string::npos);
  EXPECT_NE(res.out.find("57344"), std::string::npos);
}
