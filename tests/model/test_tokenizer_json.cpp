// tokenizer.json -> TokenizerSpec on small synthetic files: both merge forms, added tokens,
// each pre_tokenizer layout, BOS templates; malformed or unsupported files -> micromix::Error.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "micromix/error.hpp"
#include "micromix/tokenizer.hpp"
#include "model/pretokenize.hpp"
#include "model/test_tokenizer_reference.hpp"

using nlohmann::json;

namespace {

json byte_level(bool use_regex) {
  return {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", use_regex}};
}
json split(micromix::pretok::Splitter s) {
  return {{"type", "Split"},
          {"pattern", {{"Regex", std::string(micromix::pretok::splitter_regex(s))}}},
          {"behavior", "Isolated"},
          {"invert", false}};
}

// A tokenizer.json for spec (types 3/4 become added tokens), Llama-3 style BOS template.
json to_json(const micromix::TokenizerSpec& spec, bool pair_merges, const json& pre, const json& post) {
  json vocab = json::object(), added = json::array(), merges = json::array();
  for (size_t i = 0; i < spec.tokens.size(); ++i) {
    const int ty = spec.token_types.empty() ? 1 : spec.token_types[i];
    if (ty == 1 || i % 2 == 0) vocab[spec.tokens[i]] = i;  // added tokens may or may not be in vocab
    if (ty != 1)
      added.push_back({{"id", i}, {"content", spec.tokens[i]}, {"single_word", false}, {"lstrip", false},
                       {"rstrip", false}, {"normalized", false}, {"special", ty == 3}});
  }
  for (const auto& m : spec.merges) {
    const auto sp = m.find(' ');
    if (pair_merges) merges.push_back(json::array({m.substr(0, sp), m.substr(sp + 1)}));
    else merges.push_back(m);
  }
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", added},
          {"normalizer", nullptr},
          {"pre_tokenizer", pre},
          {"post_processor", post},
          {"decoder", byte_level(true)},
          {"model",
           {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", nullptr},
            {"end_of_word_suffix", nullptr}, {"fuse_unk", false}, {"byte_fallback", false},
            {"ignore_merges", false}, {"vocab", vocab}, {"merges", merges}}}};
}

json bos_template(const std::string& bos, int id) {
  return {{"type", "TemplateProcessing"},
          {"single", json::array({{{"SpecialToken", {{"id", bos}, {"type_id", 0}}}},
                                  {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
          {"pair", json::array()},
          {"special_tokens", {{bos, {{"id", bos}, {"ids", json::array({id})}, {"tokens", json::array({bos})}}}}}};
}

void expect_error(const std::string& text, const std::string& needle) {
  try {
    micromix::tokenizer_spec_from_json_text(text);
    ADD_FAILURE() << "no error, wanted '" << needle << "' for " << text.substr(0, 300);
  } catch (const micromix::Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(TokenizerJson, ReadsEveryLayoutAndEncodesLikeTheSpec) {
  std::mt19937 g(std::random_device{}());
  micromix::TokenizerSpec spec =
      tokref::random_spec(g, {"a", "b", " ", "1", "é", "'s", "\n"}, 80, {{"<|begin|>", 3}, {"<|end|>", 3}, {"<t>", 4}});
  const int bos = static_cast<int>(std::find(spec.tokens.begin(), spec.tokens.end(), "<|begin|>") - spec.tokens.begin());
  using S = micromix::pretok::Splitter;
  const std::vector<std::pair<json, std::string>> layouts = {
      {byte_level(true), "gpt2"},
      {{{"type", "Sequence"}, {"pretokenizers", json::array({byte_level(true)})}}, "gpt2"},
      {{{"type", "Sequence"},
        {"pretokenizers", json::array({{{"type", "Digits"}, {"individual_digits", true}}, byte_level(true)})}},
       "smollm"},
      {{{"type", "Sequence"}, {"pretokenizers", json::array({split(S::llama3), byte_level(false)})}}, "llama3"},
      {{{"type", "Sequence"}, {"pretokenizers", json::array({split(S::qwen2), byte_level(false)})}}, "qwen2"},
      {{{"type", "Sequence"}, {"pretokenizers", json::array({split(S::tekken), byte_level(false)})}}, "tekken"},
  };
  for (bool pair_merges : {false, true})
    for (const auto& [pre, name] : layouts)
      for (bool with_bos : {false, true}) {
        const json post = with_bos ? json{{"type", "Sequence"},
                                          {"processors", json::array({byte_level(false), bos_template("<|begin|>", bos)})}}
                                   : byte_level(false);
        const auto got = micromix::tokenizer_spec_from_json_text(to_json(spec, pair_merges, pre, post).dump());
        EXPECT_EQ(got.tokens, spec.tokens);
        EXPECT_EQ(got.token_types, spec.token_types);
        EXPECT_EQ(got.merges, spec.merges);
        EXPECT_EQ(got.pre, name);
        EXPECT_EQ(got.add_bos, with_bos);
        EXPECT_EQ(got.bos_id, with_bos ? bos : -1);
        micromix::Tokenizer tok(got);
        auto ids = tok.encode("<|begin|>ab 1é<t>'s", true);
        EXPECT_EQ(ids.front(), bos);
        if (with_bos) {
          EXPECT_EQ(ids[1], bos);
        }
      }
}

TEST(TokenizerJson, ReadsFromAFile) {
  std::mt19937 g(std::random_device{}());
  const auto spec = tokref::random_spec(g, {"x", "y"}, 5);
  const auto path = std::filesystem::temp_directory_path() / ("micromix_tok_" + std::to_string(g()) + ".json");
  std::ofstream(path) << to_json(spec, false, byte_level(true), nullptr).dump();
  EXPECT_EQ(micromix::tokenizer_spec_from_json(path.string()).tokens, spec.tokens);
  std::filesystem::remove(path);
  EXPECT_THROW(micromix::tokenizer_spec_from_json(path.string()), micromix::Error);
}

TEST(TokenizerJson, HostileFilesThrowNamingTheProblem) {
  std::mt19937 g(std::random_device{}());
  const auto spec = tokref::random_spec(g, {"x", "y", "z"}, 10, {{"<s>", 3}});
  const json good = to_json(spec, false, byte_level(true), nullptr);
  ASSERT_NO_THROW(micromix::tokenizer_spec_from_json_text(good.dump()));
  const auto with = [&](const std::function<void(json&)>& edit) {
    json j = good;
    edit(j);
    return j.dump();
  };
  expect_error("{\"model\": ", "tokenizer.json");
  expect_error("[]", "not an object");
  expect_error("{}", "no 'model'");
  expect_error(with([](json& j) { j["model"]["type"] = "Unigram"; }), "not BPE");
  expect_error(with([](json& j) { j["model"]["vocab"] = json::array(); }), "vocab is not an object");
  // Byte-level tokens never hold U+0020, so "not a token" is a new key.
  expect_error(with([](json& j) { j["model"]["vocab"]["not a token"] = "7"; }), "non-integer id");
  expect_error(with([](json& j) { j["model"]["vocab"]["not a token"] = 1u << 30; }), "not dense");
  expect_error(with([](json& j) { j["model"]["vocab"]["not a token"] = int64_t{1} << 62; }), "not dense");
  expect_error(with([](json& j) { j["model"]["vocab"]["not a token"] = -1; }), "negative");
  expect_error(with([](json& j) { j["model"]["vocab"]["not a token"] = 3; }), "used twice");
  expect_error(with([](json& j) {  // a hole below the largest id
                 auto& v = j["model"]["vocab"];
                 for (auto it = v.begin(); it != v.end(); ++it)
                   if (it.key() != "<s>") {
                     v.erase(it);
                     break;
                   }
                 v["not a token"] = 1000;
               }),
               "not dense");
  expect_error(with([](json& j) { j["model"]["merges"] = "a b"; }), "merges is not a list");
  expect_error(with([](json& j) { j["model"]["merges"].push_back(json::array({"a"})); }), "bad merge");
  expect_error(with([](json& j) { j["model"]["merges"].push_back(7); }), "bad merge");
  expect_error(with([](json& j) { j["model"]["byte_fallback"] = true; }), "byte_fallback");
  expect_error(with([](json& j) { j["model"]["dropout"] = 0.1; }), "dropout");
  expect_error(with([](json& j) { j["model"]["continuing_subword_prefix"] = "##"; }), "continuing_subword_prefix");
  expect_error(with([](json& j) { j["model"]["unk_token"] = "<nope>"; }), "unk_token");
  expect_error(with([](json& j) { j["added_tokens"] = json::array({{{"id", 0}, {"content", "qq"}}}); }), "differs");
  expect_error(with([](json& j) { j["added_tokens"] = json::array({{{"id", "0"}}}); }), "bad added token");
  expect_error(with([](json& j) { j["added_tokens"] = 5; }), "added_tokens is not a list");
  expect_error(with([](json& j) { j["added_tokens"][0]["rstrip"] = true; }), "rstrip=true");
  expect_error(with([](json& j) { j["added_tokens"][0]["lstrip"] = true; }), "lstrip=true");
  expect_error(with([](json& j) { j["added_tokens"][0]["single_word"] = true; }), "single_word=true");
  expect_error(with([](json& j) { j["normalizer"] = {{"type", "Lowercase"}}; }), "unsupported normalizer");
  expect_error(with([](json& j) { j["pre_tokenizer"] = nullptr; }), "pre_tokenizer is null");
  expect_error(with([](json& j) { j["pre_tokenizer"] = {{"type", "Whitespace"}}; }), "unsupported pre_tokenizer");
  expect_error(with([](json& j) { j["pre_tokenizer"]["add_prefix_space"] = true; }), "add_prefix_space");
  expect_error(with([](json& j) { j["pre_tokenizer"]["add_prefix_space"] = "yes"; }), "true or false");
  expect_error(with([](json& j) {
                 json s = split(micromix::pretok::Splitter::llama3);
                 s["pattern"]["Regex"] = "\\w+";
                 j["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", json::array({s, byte_level(false)})}};
               }),
               "unsupported Split regex");
  expect_error(with([](json& j) {
                 json s = split(micromix::pretok::Splitter::llama3);
                 s["behavior"] = "Removed";
                 j["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", json::array({s, byte_level(false)})}};
               }),
               "Isolated");
  expect_error(with([](json& j) { j["post_processor"] = {{"type", "BertProcessing"}}; }), "unsupported post_processor");
  expect_error(with([](json& j) {
                 json t = bos_template("<s>", 0);
                 t["single"].push_back({{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}});
                 j["post_processor"] = t;
               }),
               "after the text");
  expect_error(with([](json& j) {
                 json t = bos_template("<nope>", 0);
                 t.erase("special_tokens");
                 j["post_processor"] = t;
               }),
               "not in the vocabulary");
  // Random corruption of the good file never crashes: it parses or throws micromix::Error.
  const std::string text = good.dump();
  for (int t = 0; t < 300; ++t) {
    std::string bad = text;
    for (int k = 0; k < 3; ++k) bad[g() % bad.size()] = "{}[]\",:0-9 a\\"[g() % 14];
    try {
      micromix::tokenizer_spec_from_json_text(bad);
    } catch (const micromix::Error&) {
    }
  }
}
