// The tokenizer against Hugging Face `tokenizers` (fixtures written by
// scripts/gen_tokenizer_fixtures.py): pre-tokenizer pieces for every splitter (committed), and
// SmolLM2's ids, which need its vocabulary (not committed; skipped without it).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "micromix/tokenizer.hpp"
#include "model/pretokenize.hpp"

namespace {

const std::string kFixtures = std::string(MICROMIX_SOURCE_DIR) + "/tests/data/tokenizer/";

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// The SmolLM2 tokenizer.json the fixture script saves (MICROMIX_TOKENIZER_JSON overrides).
std::string smollm2_json_path() {
  const char* env = std::getenv("MICROMIX_TOKENIZER_JSON");
  return env ? env : "/tmp/micromix_tok/smollm2_tokenizer.json";
}

}  // namespace

TEST(TokenizerFixtures, PretokenizersSplitLikeHuggingFace) {
  const auto root = nlohmann::json::parse(read_file(kFixtures + "pretokenize_cases.json"));
  size_t total = 0, matched = 0;
  for (auto& [name, cases] : root.at("splitters").items()) {
    const auto splitter = micromix::pretok::splitter_from_name(name);
    for (const auto& c : cases) {
      const std::string text = c.at("text");
      std::vector<std::string> expect = c.at("pieces"), got;
      std::vector<micromix::pretok::Piece> pieces;
      micromix::pretok::split(splitter, text, pieces);
      for (auto p : pieces) got.push_back(text.substr(p.begin, p.end - p.begin));
      ++total;
      matched += got == expect;
      EXPECT_EQ(got, expect) << name << ": '" << text << "'";
    }
  }
  EXPECT_GT(total, 500u);
  std::printf("[ INFO     ] pre-tokenizer cases matching Hugging Face: %zu / %zu\n", matched, total);
}

TEST(TokenizerFixtures, SmolLM2IdsMatchHuggingFace) {
  const std::string path = smollm2_json_path();
  if (!std::filesystem::exists(path))
    GTEST_SKIP() << "no SmolLM2 tokenizer.json at " << path
                 << " (run scripts/gen_tokenizer_fixtures.py or set MICROMIX_TOKENIZER_JSON)";
  const micromix::Tokenizer tok(micromix::tokenizer_spec_from_json(path));
  const auto root = nlohmann::json::parse(read_file(kFixtures + "smollm2_cases.json"));
  ASSERT_EQ(tok.vocab_size(), root.at("vocab_size").get<int>());
  size_t matched = 0, total = 0;
  for (const auto& c : root.at("cases")) {
    const std::string text = c.at("text");
    const std::vector<int32_t> expect = c.at("ids");
    const auto got = tok.encode(text, false, true);
    ++total;
    matched += got == expect;
    EXPECT_EQ(got, expect) << "'" << text << "'";
  }
  std::printf("[ INFO     ] SmolLM2 id cases matching Hugging Face: %zu / %zu\n", matched, total);
}

// Encodes the evaluation text, prints the throughput (no threshold: timing is not a test) and
// checks the round trip; compares with HF's ids when the fixture script left them in /tmp.
TEST(TokenizerFixtures, SmolLM2EncodesMobyDick) {
  const std::string path = smollm2_json_path();
  const std::string text_path = "/work/shared/data/text/eval/moby-dick.txt";
  if (!std::filesystem::exists(path) || !std::filesystem::exists(text_path))
    GTEST_SKIP() << "needs " << path << " and " << text_path;
  const micromix::Tokenizer tok(micromix::tokenizer_spec_from_json(path));
  const std::string text = read_file(text_path);
  const auto t0 = std::chrono::steady_clock::now();
  const auto ids = tok.encode(text, false, true);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("[ INFO     ] moby-dick: %zu bytes -> %zu tokens in %.3f s (%.2f MB/s, cold cache)\n", text.size(),
              ids.size(), s, static_cast<double>(text.size()) / s / 1e6);
  EXPECT_EQ(tok.decode(ids), text);
  const std::string hf = "/tmp/micromix_tok/moby_dick_ids.json";
  if (std::filesystem::exists(hf)) {
    const std::vector<int32_t> expect = nlohmann::json::parse(read_file(hf));
    ASSERT_EQ(ids.size(), expect.size());
    size_t first_diff = 0;
    while (first_diff < ids.size() && ids[first_diff] == expect[first_diff]) ++first_diff;
    EXPECT_EQ(first_diff, ids.size()) << "first difference at token " << first_diff;
  }
}
