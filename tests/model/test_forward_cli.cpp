// `micromix logits / generate / ppl` end to end on a small synthetic GGUF (float32, qwen2 layout:
// no Q/K permutation), checked against the double-precision reference forward; the real default
// model when present.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <filesystem>
#include <regex>

#include <nlohmann/json.hpp>

#include "io/gguf_writer.hpp"
#include "micromix/fetch.hpp"
#include "model/test_forward_reference.hpp"
#include "tools/cli_runner.hpp"

namespace w = testutil::gguf;
using testutil::run_cli;

namespace {

// Writes the random model as a qwen2 GGUF with a tiny byte-level BPE vocabulary of c.vocab tokens:
// "<s>" (BOS, added), "</s>" (EOS), "a", "b", "ab", then unreachable fillers.
struct CliModel {
  micromix::ModelConfig c;
  testmodel::MemorySource src;
  std::string path;

  explicit CliModel(const testutil::TempDir& dir) : c(config()), src(testmodel::random_model(c, std::random_device{}())) {
    w::Writer wr;
    const std::string a = "qwen2";
    std::vector<std::string> tokens{"<s>", "</s>", "a", "b", "ab"};
    std::vector<int32_t> types{3, 3, 1, 1, 1};
    while (static_cast<int>(tokens.size()) < c.vocab) {
      tokens.push_back("filler" + std::to_string(tokens.size()));
      types.push_back(1);
    }
    wr.set("general.architecture", w::string(a))
        .set("general.name", w::string("tiny-cli"))
        .set(a + ".block_count", w::u32(static_cast<uint32_t>(c.n_layers)))
        .set(a + ".context_length", w::u32(static_cast<uint32_t>(c.max_ctx)))
        .set(a + ".embedding_length", w::u32(static_cast<uint32_t>(c.hidden)))
        .set(a + ".feed_forward_length", w::u32(static_cast<uint32_t>(c.ffn)))
        .set(a + ".attention.head_count", w::u32(static_cast<uint32_t>(c.n_heads)))
        .set(a + ".attention.head_count_kv", w::u32(static_cast<uint32_t>(c.n_kv_heads)))
        .set(a + ".rope.freq_base", w::f32(c.rope_theta))
        .set(a + ".attention.layer_norm_rms_epsilon", w::f32(c.rms_eps))
        .set("tokenizer.ggml.model", w::string("gpt2"))
        .set("tokenizer.ggml.pre", w::string("qwen2"))
        .set("tokenizer.ggml.tokens", w::string_array(tokens))
        .set("tokenizer.ggml.token_type", w::i32_array(types))
        .set("tokenizer.ggml.merges", w::string_array({"a b"}))
        .set("tokenizer.ggml.bos_token_id", w::u32(0))
        .set("tokenizer.ggml.eos_token_id", w::u32(1))
        .set("tokenizer.ggml.add_bos_token", w::boolean(true));
    for (const auto& name : src.names()) {
      const auto& t = *src.find(name);
      wr.tensor(name, std::vector<uint64_t>(t.shape.rbegin(), t.shape.rend()), 0 /* F32 */,
                w::f32_bytes(src.values(name)));
    }
    path = dir.file("tiny.gguf");
    testutil::write_file(path, wr.build());
  }

  static micromix::ModelConfig config() {
    auto c = testmodel::tiny_config();
    c.arch = "qwen2";
    c.qkv_bias = true;
    c.rope_theta = 100000.0f;
    c.rms_eps = 1e-6f;
    return c;
  }
};

std::vector<int32_t> ids_from_json(const std::string& out) {
  const auto j = nlohmann::json::parse(out.substr(out.find('[')));
  return j.get<std::vector<int32_t>>();
}

}  // namespace

TEST(ForwardCli, LogitsMatchReferenceForward) {
  testutil::TempDir dir;
  CliModel m(dir);
  const auto res = run_cli(fmt::format("logits --model {} --prompt abababaab --out {} 2>/dev/null", m.path,
                                       dir.file("logits.f32")));
  ASSERT_EQ(res.exit_code, 0) << res.out;
  const auto ids = ids_from_json(res.out);
  ASSERT_GE(ids.size(), 4u);
  EXPECT_EQ(ids[0], 0) << "BOS first: the vocabulary says add_bos";
  const std::string bytes = testutil::read_file(dir.file("logits.f32"));
  ASSERT_EQ(bytes.size(), ids.size() * m.c.vocab * sizeof(float));
  std::vector<float> got(ids.size() * m.c.vocab);
  std::memcpy(got.data(), bytes.data(), bytes.size());
  const auto ref = testmodel::reference_forward(m.c, m.src, ids);
  double d = 0, mx = 0;
  for (size_t i = 0; i < ref.size(); ++i) d = std::max(d, std::abs(got[i] - ref[i])), mx = std::max(mx, std::abs(ref[i]));
  EXPECT_LT(d / mx, 2e-5);

  const auto nobos = run_cli(fmt::format("logits --model {} --prompt abababaab --no-bos --out {} 2>/dev/null", m.path,
                                         dir.file("logits2.f32")));
  ASSERT_EQ(nobos.exit_code, 0) << nobos.out;
  EXPECT_EQ(ids_from_json(nobos.out), std::vector<int32_t>(ids.begin() + 1, ids.end()));
}

TEST(ForwardCli, GreedyGenerationFollowsReferenceArgmax) {
  testutil::TempDir dir;
  CliModel m(dir);
  const auto res = run_cli(fmt::format("generate --model {} --prompt abab -n 6 --threads 2 2>{}", m.path,
                                       dir.file("err.txt")));
  ASSERT_EQ(res.exit_code, 0) << res.out << testutil::read_file(dir.file("err.txt"));
  EXPECT_NE(testutil::read_file(dir.file("err.txt")).find("tokens/s"), std::string::npos);
  // Reference greedy continuation of [BOS, "ab", "ab"] until EOS or 6 tokens.
  std::vector<int32_t> ids{0, 4, 4};
  std::string want;
  for (int i = 0; i < 6; ++i) {
    const auto logits = testmodel::reference_forward(m.c, m.src, ids);
    const double* last = logits.data() + (ids.size() - 1) * m.c.vocab;
    const auto next = static_cast<int32_t>(std::max_element(last, last + m.c.vocab) - last);
    if (next == 1) break;
    if (next == 0) GTEST_SKIP() << "greedy picked BOS; its text form is the tokenizer's business";
    const std::vector<std::string> text{"", "", "a", "b", "ab"};
    want += next < 5 ? text[next] : "filler" + std::to_string(next);
    ids.push_back(next);
  }
  EXPECT_EQ(res.out, want + "\n");
}

TEST(ForwardCli, PerplexityMatchesReferenceAndReportsFields) {
  testutil::TempDir dir;
  CliModel m(dir);
  std::string text;
  std::mt19937 g(std::random_device{}());
  for (int i = 0; i < 120; ++i) text += "ab"[g() % 2];
  testutil::write_file(dir.file("text.txt"), text);
  // The token ids, from the logits command (same tokenization as ppl: BOS when the vocab adds it).
  const auto tok = run_cli(fmt::format("logits --model {} --prompt {} --out {} 2>/dev/null", m.path, text,
                                       dir.file("l.f32")));
  ASSERT_EQ(tok.exit_code, 0) << tok.out;
  const auto ids = ids_from_json(tok.out);
  const int64_t ctx = 16;
  const auto res = run_cli(fmt::format("ppl --model {} --text {} --ctx {} -q 2>&1", m.path, dir.file("text.txt"), ctx));
  ASSERT_EQ(res.exit_code, 0) << res.out;
  std::smatch sm;
  ASSERT_TRUE(std::regex_search(res.out, sm, std::regex("ppl: ([0-9.]+)"))) << res.out;
  const double ppl = std::stod(sm[1]);
  double nll = 0;
  int64_t count = 0;
  for (size_t s = 0; s + 1 < ids.size(); s += ctx) {
    const std::vector<int32_t> win(ids.begin() + s, ids.begin() + std::min(ids.size(), s + ctx));
    const auto logits = testmodel::reference_forward(m.c, m.src, win);
    for (size_t i = 0; i + 1 < win.size(); ++i, ++count) {
      const double* row = logits.data() + i * m.c.vocab;
      double mx = -1e300, sum = 0;
      for (int v = 0; v < m.c.vocab; ++v) mx = std::max(mx, row[v]);
      for (int v = 0; v < m.c.vocab; ++v) sum += std::exp(row[v] - mx);
      nll += -(row[win[i + 1]] - mx - std::log(sum));
    }
  }
  EXPECT_NEAR(ppl, std::exp(nll / count), 1e-4 * ppl + 1e-4);
  EXPECT_NE(res.out.find(fmt::format("tokens: {}", ids.size())), std::string::npos) << res.out;
  EXPECT_NE(res.out.find(fmt::format("predicted: {}", count)), std::string::npos) << res.out;
}

TEST(ForwardCli, BadArgumentsFailWithOneLineErrors) {
  testutil::TempDir dir;
  CliModel m(dir);
  testutil::write_file(dir.file("short.txt"), "abab");
  struct Bad {
    std::string args, expect;
  };
  const Bad cases[] = {
      {"ppl --model /nonexistent.gguf --text " + dir.file("short.txt"), "not found"},
      {"ppl --model " + m.path + " --text /nonexistent.txt", "cannot read text file"},
      {"ppl --model " + m.path + " --text " + dir.file("short.txt") + " --llamacpp --ctx 8", "at least 2*ctx"},
      {"generate --model " + m.path + " --prompt ab --temp -1", "--temp"},
      {"logits --model " + m.path + " --prompt ab --out /nonexistent-dir/x.f32", "cannot open"},
      {"logits --model " + dir.file("short.txt") + " --prompt ab --out " + dir.file("x"), ""},
  };
  for (const auto& c : cases) {
    const auto res = run_cli(c.args);
    EXPECT_NE(res.exit_code, 0) << c.args;
    EXPECT_NE(res.out.find(c.expect), std::string::npos) << c.args << "\n" << res.out;
    if (res.exit_code == 1) {
      EXPECT_EQ(std::count(res.out.begin(), res.out.end(), '\n'), 1) << res.out;
    }
  }
}

TEST(ForwardCli, RealModelKnowsTheCapitalOfFrance) {
  const char* env = std::getenv("MICROMIX_MODEL");
  const std::string path = env ? env : micromix::default_model_path();
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "default model not present (micromix fetch): " << path;
  const auto res = run_cli(fmt::format("generate --model {} --prompt 'The capital of France is' -n 4 2>/dev/null", path));
  ASSERT_EQ(res.exit_code, 0) << res.out;
  EXPECT_NE(res.out.find("Paris"), std::string::npos) << res.out;
}
