// Quantized checkpoints: bit-identical round trip, same logits as the in-memory quantized model,
// corrupt files refused with clear messages.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <random>

#include "micromix/error.hpp"
#include "micromix/fetch.hpp"
#include "micromix/quant_checkpoint.hpp"
#include "micromix/safetensors.hpp"
#include "model/test_forward_reference.hpp"
#include "tools/cli_runner.hpp"

using namespace micromix;

namespace {

struct Fixture {
  ModelSource src;
  QuantPlan plan;
};

// A tiny random model with a MicroMix plan from real calibration on random tokens.
Fixture make_fixture(uint64_t seed) {
  Fixture f;
  f.src.config = testmodel::tiny_config();
  f.src.config.qkv_bias = seed % 2 == 1;
  f.src.tensors = std::make_unique<testmodel::MemorySource>(testmodel::random_model(f.src.config, seed));
  f.src.tokenizer.tokens = {"a", "b"};
  f.src.tokenizer.merges = {"a b"};
  f.src.path = "<memory>";
  Model m = Model::load(f.src);
  std::mt19937_64 g(seed);
  const auto tokens = testmodel::random_tokens(200, f.src.config.vocab, g);
  CalibrationOptions co;
  co.samples = 3;
  co.seqlen = 40;
  const ModelStats stats = calibrate(m, tokens, co);
  MicromixOptions mm;
  mm.granularity = 32;
  f.plan = plan_micromix(f.src.config, stats, mm, MixedLinearOptions{});
  // Force every segment kind to appear somewhere.
  f.plan.layers[0][0].split = mx::MixedSplit{32, 0, 32, mx::ElemFormat::fp6_e3m2};
  f.plan.layers[0][3].split = mx::MixedSplit{32, 32, 32, mx::ElemFormat::fp6_e2m3};
  return f;
}

std::vector<float> logits_of(const Model& m, const std::vector<int32_t>& tokens) {
  KvCache cache = m.new_cache(64);
  std::vector<float> out;
  m.forward(tokens, cache, out, -1);
  return out;
}

}  // namespace

TEST(QuantCheckpoint, RoundTripIsBitIdenticalAndRunsTheSameModel) {
  testutil::TempDir dir;
  const Fixture f = make_fixture(std::random_device{}());
  const std::string path = dir.file("q.safetensors");
  save_quantized_checkpoint(path, f.src, f.plan);
  ASSERT_TRUE(is_quantized_checkpoint(path));
  QuantPlan loaded_plan;
  const ModelSource q = load_model_source(path);
  load_quantized_checkpoint(path, &loaded_plan);
  EXPECT_EQ(q.format, "micromix");
  EXPECT_EQ(q.config.hidden, f.src.config.hidden);
  EXPECT_EQ(q.tokenizer.merges, f.src.tokenizer.merges);
  for (size_t l = 0; l < f.plan.layers.size(); ++l)
    for (int i = 0; i < kLinearInputs; ++i) {
      EXPECT_EQ(loaded_plan.layers[l][i].perm, f.plan.layers[l][i].perm);
      EXPECT_EQ(loaded_plan.layers[l][i].split.n8, f.plan.layers[l][i].split.n8);
      EXPECT_EQ(loaded_plan.layers[l][i].split.fp6, f.plan.layers[l][i].split.fp6);
    }
  // Same packed weights as quantizing in memory, hence the same logits, bit for bit.
  const Model direct = Model::load(f.src, make_plan_factory(f.plan));
  const Model from_file = Model::load(q);
  for (int l = 0; l < f.src.config.n_layers; ++l) {
    const auto& a = dynamic_cast<const MixedLinear&>(*direct.layer(l).down).weight();
    const auto& b = dynamic_cast<const MixedLinear&>(*from_file.layer(l).down).weight();
    for (int s = 0; s < 3; ++s) {
      EXPECT_EQ(a.seg[s].codes, b.seg[s].codes);
      EXPECT_EQ(a.seg[s].scales, b.seg[s].scales);
    }
  }
  std::mt19937_64 g(7);
  const auto tokens = testmodel::random_tokens(20, f.src.config.vocab, g);
  const auto la = logits_of(direct, tokens), lb = logits_of(from_file, tokens);
  ASSERT_EQ(la.size(), lb.size());
  EXPECT_EQ(std::memcmp(la.data(), lb.data(), la.size() * sizeof(float)), 0);
  // And the quantized model differs from the float one (quantization did something).
  const auto lf = logits_of(Model::load(f.src), tokens);
  EXPECT_NE(std::memcmp(la.data(), lf.data(), la.size() * sizeof(float)), 0);
  // Refuses to overwrite.
  EXPECT_THROW(save_quantized_checkpoint(path, f.src, f.plan), Error);
}

TEST(QuantCheckpoint, InconsistentFilesAreRefusedClearly) {
  testutil::TempDir dir;
  const Fixture f = make_fixture(12345);
  const std::string path = dir.file("q.safetensors");
  save_quantized_checkpoint(path, f.src, f.plan);
  const std::string good = testutil::read_file(path);
  auto expect_error = [&](const std::string& bytes, const std::string& needle) {
    const std::string p = dir.file("bad.safetensors");
    std::filesystem::remove(p);
    testutil::write_file(p, bytes);
    try {
      const ModelSource s = load_quantized_checkpoint(p);
      Model::load(s);
      ADD_FAILURE() << "no error for case '" << needle << "'";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  auto replace = [&](std::string s, const std::string& from, const std::string& to) {
    const size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) s.replace(at, from.size(), to);
    return s;
  };
  expect_error(good.substr(0, good.size() / 2), "");                                            // truncated
  expect_error(replace(good, "\"format_version\":\"1\"", "\"format_version\":\"9\""), "version 9");
  // A tensor renamed away (same length keeps the header valid).
  expect_error(replace(good, "blk.0.ffn_down.weight.mx6.codes", "blk.0.ffn_down.weight.mx6.codez"), "missing tensor");
  expect_error(replace(good, "blk.0.attn_qkv.perm", "blk.0.attn_qkv.perX"), "missing tensor");
  // A permutation entry repeated: overwrite the first int32 of a perm with the second's value.
  {
    auto st = SafetensorsSource::from_bytes(std::vector<uint8_t>(good.begin(), good.end()));
    const TensorView* pt = st->find("blk.1.ffn_down.perm");
    ASSERT_NE(pt, nullptr);
    std::string bad = good;
    // Locate the perm bytes in the file image by content (first 8 bytes are unique enough).
    const std::string needle(reinterpret_cast<const char*>(pt->data.data()), 8);
    const size_t at = bad.find(needle);
    ASSERT_NE(at, std::string::npos);
    std::memcpy(bad.data() + at, bad.data() + at + 4, 4);
    expect_error(bad, "permutation");
  }
}

TEST(QuantCheckpoint, CliQuantizeWritesALoadableCheckpoint) {
  const char* env = std::getenv("MICROMIX_MODEL");
  const std::string model = env ? env : default_model_path();
  if (!std::filesystem::exists(model)) GTEST_SKIP() << "model not present (" << model << "): run `micromix fetch`";
  testutil::TempDir dir;
  const auto r = testutil::run_cli("quantize --model " + model + " --scheme mxfp4 --out " + dir.file("q.safetensors"));
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("average 4.250 bits per weight"), std::string::npos) << r.out;
  const auto r2 = testutil::run_cli("inspect --model " + dir.file("q.safetensors"));
  EXPECT_EQ(r2.exit_code, 0) << r2.out;
  const auto r3 = testutil::run_cli("generate --model " + dir.file("q.safetensors") + " --prompt Hello -n 4");
  EXPECT_EQ(r3.exit_code, 0) << r3.out;
  // Never overwrites without --force.
  const auto r4 = testutil::run_cli("quantize --model " + model + " --scheme mxfp4 --out " + dir.file("q.safetensors"));
  EXPECT_NE(r4.exit_code, 0);
  EXPECT_NE(r4.out.find("refusing to overwrite"), std::string::npos) << r4.out;
}

TEST(QuantCheckpoint, CliQuantizeMeetsATargetBitBudget) {
  const char* env = std::getenv("MICROMIX_MODEL");
  const std::string model = env ? env : default_model_path();
  if (!std::filesystem::exists(model)) GTEST_SKIP() << "model not present (" << model << "): run `micromix fetch`";
  testutil::TempDir dir;
  {
    std::ofstream calib(dir.file("calib.txt"));
    for (int i = 0; i < 40; ++i) calib << "The committee met on Tuesday " << i << " times to discuss the budget.\n";
  }
  const std::string base = "quantize --model " + model + " --calib " + dir.file("calib.txt") +
                           " --samples 1 --seqlen 64 --error-rows 16 --sensitivity-tokens 8 --out ";
  const auto r = testutil::run_cli(base + dir.file("q.safetensors") + " --target-bits 5 --fp6 measured");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const auto at = r.out.find("scheme micromix@5,");
  ASSERT_NE(at, std::string::npos) << r.out;
  const auto avg = r.out.find("average ", at);
  ASSERT_NE(avg, std::string::npos) << r.out;
  const double bits = std::stod(r.out.substr(avg + 8));
  EXPECT_LE(bits, 5.0 + 1e-3);
  EXPECT_GT(bits, 4.9);  // the budget is spent (steps are 2 or 4 bits on one 128-channel group)
  const auto r2 = testutil::run_cli("ppl --model " + dir.file("q.safetensors") + " --text " + dir.file("calib.txt") +
                                    " --ctx 64 --max-tokens 64");
  EXPECT_EQ(r2.exit_code, 0) << r2.out;
  // Bad budgets fail before any work, with one clear line.
  for (const std::string bad : {" --target-bits 4", " --target-bits nan", " --scheme micromix@x", " --scheme mxfp4 --target-bits 5"}) {
    const auto rb = testutil::run_cli(base + dir.file("bad.safetensors") + bad);
    EXPECT_NE(rb.exit_code, 0) << bad;
    EXPECT_NE(rb.out.find("error"), std::string::npos) << bad << ": " << rb.out;
    EXPECT_FALSE(std::filesystem::exists(dir.file("bad.safetensors"))) << bad;
  }
}
