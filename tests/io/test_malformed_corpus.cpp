// Every file of tests/data/malformed/ (hand-made broken files, valid seeds, and inputs the fuzzers
// found) goes through the parsers it targets: each must load or throw micromix::Error, never
// crash, hang or throw anything else. Runs in normal CI; the fuzzers are in tests/fuzz/.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "io/gguf.hpp"
#include "io/hf_config.hpp"
#include "micromix/error.hpp"
#include "micromix/safetensors.hpp"
#include "micromix/tokenizer.hpp"

using namespace micromix;
namespace fs = std::filesystem;

namespace {

const fs::path kCorpus = fs::path(MICROMIX_SOURCE_DIR) / "tests" / "data" / "malformed";

std::vector<fs::path> files_in(const char* kind) {
  std::vector<fs::path> out;
  if (fs::is_directory(kCorpus / kind))
    for (const auto& e : fs::directory_iterator(kCorpus / kind))
      if (e.is_regular_file()) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Runs f; counts whether it loaded or threw micromix::Error. Anything else fails the test.
template <typename F>
void expect_error_or_success(const fs::path& p, int& loaded, int& rejected, F&& f) {
  try {
    f();
    ++loaded;
  } catch (const Error& e) {
    EXPECT_GT(std::string(e.what()).size(), 10u) << p << ": error without a message";
    ++rejected;
  } catch (const std::exception& e) {
    ADD_FAILURE() << p << ": threw a non-micromix exception: " << e.what();
  }
}

}  // namespace

TEST(MalformedCorpus, SafetensorsFiles) {
  const auto files = files_in("safetensors");
  ASSERT_GE(files.size(), 10u) << "corpus missing under " << kCorpus;
  int loaded = 0, rejected = 0;
  for (const auto& p : files) {
    SCOPED_TRACE(p.filename().string());
    expect_error_or_success(p, loaded, rejected, [&] {
      const SafetensorsSource src({p.string()});  // memory-mapped, as in real use
      for (const auto& n : src.names()) (void)to_float(src.get(n));
    });
    // Hand-made files say what they are: ok_* must load, the rest must be rejected (fuzz-* files,
    // found by the fuzzers, may do either).
    if (p.filename().string().starts_with("fuzz-")) continue;
    const bool ok = p.filename().string().starts_with("ok_");
    EXPECT_EQ(ok, [&] {
      try {
        SafetensorsSource s({p.string()});
        return true;
      } catch (const Error&) {
        return false;
      }
    }()) << p;
  }
  EXPECT_GT(rejected, 0);
  EXPECT_GT(loaded, 0);
}

TEST(MalformedCorpus, GgufFiles) {
  const auto files = files_in("gguf");
  ASSERT_GE(files.size(), 10u) << "corpus missing under " << kCorpus;
  int loaded = 0, rejected = 0;
  for (const auto& p : files) {
    SCOPED_TRACE(p.filename().string());
    expect_error_or_success(p, loaded, rejected, [&] {
      const ModelSource m = load_model_source(p.string());
      for (const auto& n : m.tensors->names()) (void)to_float(m.tensors->get(n));
    });
    // The raw reader alone (no model adapter) must also hold.
    int l2 = 0, r2 = 0;
    expect_error_or_success(p, l2, r2, [&] { (void)io::gguf::File::open(p.string()); });
  }
  EXPECT_GT(rejected, 0);
  EXPECT_GT(loaded, 0);
}

TEST(MalformedCorpus, HuggingFaceJsonFiles) {
  const auto files = files_in("hf_json");
  ASSERT_GE(files.size(), 5u) << "corpus missing under " << kCorpus;
  int loaded = 0, rejected = 0;
  for (const auto& p : files) {
    SCOPED_TRACE(p.filename().string());
    const std::string text = slurp(p);
    expect_error_or_success(p, loaded, rejected, [&] {
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(text);
      } catch (const nlohmann::json::exception& e) {
        fail("not JSON: {}", e.what());
      }
      (void)io::hf_config_from_json(j, p.string());
    });
    expect_error_or_success(p, loaded, rejected, [&] { (void)tokenizer_spec_from_json_text(text); });
  }
  EXPECT_GT(rejected, 0);
  EXPECT_GT(loaded, 0);
}
