// `micromix inspect` end to end on a synthetic GGUF (and the real default model when present);
// bad paths and corrupt files give a one-line error and exit code 1.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <random>

#include "io/gguf_writer.hpp"
#include "micromix/fetch.hpp"
#include "tools/cli_runner.hpp"

using testutil::run_cli;
namespace w = testutil::gguf;

namespace {

// A one-layer llama with hidden 32, 2 heads, 1 KV head, ffn 64, vocab 3; tensors in f32 except
// ffn_up (q8_0). Returns the file bytes.
std::string tiny_llama() {
  std::mt19937 rng(std::random_device{}());
  std::normal_distribution<float> nd;
  auto f32 = [&](size_t n) {
    std::vector<float> v(n);
    for (auto& x : v) x = nd(rng);
    return w::f32_bytes(v);
  };
  w::Writer wr;
  wr.set("general.architecture", w::string("llama"))
      .set("general.name", w::string("tiny-inspect"))
      .set("llama.block_count", w::u32(1))
      .set("llama.embedding_length", w::u32(32))
      .set("llama.feed_forward_length", w::u32(64))
      .set("llama.attention.head_count", w::u32(2))
      .set("llama.attention.head_count_kv", w::u32(1))
      .set("llama.context_length", w::u32(777))
      .set("tokenizer.ggml.model", w::string("gpt2"))
      .set("tokenizer.ggml.tokens", w::string_array({"<s>", "x", "y"}))
      .set("tokenizer.ggml.bos_token_id", w::u32(0));
  wr.tensor("token_embd.weight", {32, 3}, 0, f32(96));
  wr.tensor("blk.0.attn_q.weight", {32, 32}, 0, f32(1024));
  wr.tensor("blk.0.attn_k.weight", {32, 16}, 0, f32(512));
  wr.tensor("blk.0.ffn_up.weight", {32, 64}, 8, std::string(64 * 34, '\0'));  // q8_0, zero scales
  wr.tensor("output_norm.weight", {32}, 0, f32(32));
  return wr.build();
}

#define EXPECT_HAS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << "output:\n" << (haystack)

size_t lines(const std::string& s) { return static_cast<size_t>(std::count(s.begin(), s.end(), '\n')); }

}  // namespace

TEST(CliInspect, SyntheticGguf) {
  testutil::TempDir dir;
  testutil::write_file(dir.file("tiny.gguf"), tiny_llama());
  const auto r = run_cli("inspect --metadata --model " + dir.file("tiny.gguf"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_HAS(r.out, "GGUF v3");
  EXPECT_HAS(r.out, "tiny-inspect");
  EXPECT_HAS(r.out, "llama.context_length");
  EXPECT_HAS(r.out, "context          777");
  EXPECT_HAS(r.out, "head dim         16");
  EXPECT_HAS(r.out, "vocab            3");
  EXPECT_HAS(r.out, "tied embeddings  yes");
  EXPECT_HAS(r.out, "bos              0 \"<s>\"");
  // Row-major shapes (GGUF ne reversed) and byte sizes.
  EXPECT_HAS(r.out, "blk.0.attn_k.weight  f32    [16, 32]");
  EXPECT_HAS(r.out, "blk.0.ffn_up.weight  q8_0   [64, 32]");
  EXPECT_HAS(r.out, "2176");  // 64 rows x 34 bytes
  // Totals: 96 + 1024 + 512 + 2048 + 32 params; f32 bytes 4 * 1664.
  EXPECT_HAS(r.out, "all        5 tensors          3712 params");
  EXPECT_HAS(r.out, "f32        4 tensors          1664 params         6656 bytes");
  const auto quiet = run_cli("inspect --no-tensors --model " + dir.file("tiny.gguf"));
  ASSERT_EQ(quiet.exit_code, 0) << quiet.out;
  EXPECT_EQ(quiet.out.find("blk.0.attn_q.weight"), std::string::npos) << quiet.out;
}

TEST(CliInspect, BadPathsAndCorruptFilesFailWithOneLine) {
  testutil::TempDir dir;
  const std::string good = tiny_llama();
  testutil::write_file(dir.file("cut.gguf"), good.substr(0, good.size() / 2));
  testutil::write_file(dir.file("text.gguf"), "plain text");
  std::string bad_version = good;
  bad_version[4] = 2;
  testutil::write_file(dir.file("v2.gguf"), bad_version);
  struct Case {
    std::string path, expect;
  };
  const Case cases[] = {{dir.file("missing.gguf"), "no such file"},
                        {dir.file("cut.gguf"), "beyond end of file"},
                        {dir.file("text.gguf"), "GGUF file (it does not start with"},
                        {dir.file("v2.gguf"), "unsupported GGUF version 2"}};
  for (const auto& c : cases) {
    const auto r = run_cli("inspect --model " + c.path);
    EXPECT_EQ(r.exit_code, 1) << r.out;
    EXPECT_EQ(lines(r.out), 1u) << r.out;
    EXPECT_HAS(r.out, "error");
    EXPECT_HAS(r.out, c.expect);
  }
}

TEST(CliInspect, RealDefaultModel) {
  std::string path = micromix::default_model_path();
  if (const char* p = std::getenv("MICROMIX_MODEL"); p && *p) path = p;
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "default model not found at " << path;
  const auto r = run_cli("inspect --model " + path);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_HAS(r.out, "layers           30");
  EXPECT_HAS(r.out, "blk.29.ffn_down.weight");
  EXPECT_HAS(r.out, "token_embd.weight");
  EXPECT_HAS(r.out, "[49152, 576]");
  EXPECT_HAS(r.out, "all      272 tensors");
}
