// Tokenizer on synthetic vocabularies: ids against a naive reference BPE on random strings,
// byte-exact round trips of random bytes (invalid UTF-8 included), special tokens, BOS,
// ignore_merges, missing byte tokens, and malformed specs -> micromix::Error.
#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "micromix/error.hpp"
#include "micromix/tokenizer.hpp"
#include "model/test_tokenizer_reference.hpp"

using micromix::Tokenizer;
using micromix::TokenizerSpec;

namespace {

const std::vector<std::string> kAlphabet = {"a", "b", "c", "e", "s", "t", " ", "  ", "\n", "\t", "'", "'s", "1", "2",
                                            "7", ".", ",", "!", "é", "ß", "中", "文", "😀", "\xCC\x81", "A", "Z"};

std::string random_text(std::mt19937& g, size_t max_pieces) {
  std::string s;
  const size_t n = std::uniform_int_distribution<size_t>(0, max_pieces)(g);
  for (size_t k = 0; k < n; ++k) s += kAlphabet[std::uniform_int_distribution<size_t>(0, kAlphabet.size() - 1)(g)];
  return s;
}

std::string random_bytes(std::mt19937& g, size_t max_len) {
  std::string s(std::uniform_int_distribution<size_t>(0, max_len)(g), '\0');
  for (auto& c : s) c = static_cast<char>(g() & 0xFF);
  return s;
}

int32_t id_of(const TokenizerSpec& spec, const std::string& t) {
  auto it = std::find(spec.tokens.begin(), spec.tokens.end(), t);
  return it == spec.tokens.end() ? -1 : static_cast<int32_t>(it - spec.tokens.begin());
}

}  // namespace

TEST(Tokenizer, MatchesNaiveReferenceBpeOnRandomText) {
  std::mt19937 g(std::random_device{}());
  for (int vocab = 0; vocab < 6; ++vocab) {
    TokenizerSpec spec = tokref::random_spec(g, kAlphabet, 50 + vocab * 120);
    for (const std::string name : {"gpt2", "qwen2", "llama3", "smollm", "tekken"}) {
      spec.pre = name;
      Tokenizer tok(spec);
      tokref::RefBpe ref(spec);
      for (int t = 0; t < 200; ++t) {
        const std::string text = random_text(g, 30);
        const auto ids = tok.encode(text);
        ASSERT_EQ(ids, ref.encode_plain(text, micromix::pretok::splitter_from_name(name), name == "llama3"))
            << "pre=" << name << " text='" << text << "' merges=" << spec.merges.size();
        ASSERT_EQ(tok.decode(ids), text);
      }
    }
  }
}

TEST(Tokenizer, LongPieceMatchesReference) {
  std::mt19937 g(std::random_device{}());
  TokenizerSpec spec = tokref::random_spec(g, {"a", "b", "ab", "ba", "aa"}, 60);
  Tokenizer tok(spec);
  tokref::RefBpe ref(spec);
  std::string text;
  for (int k = 0; k < 3000; ++k) text += (g() % 3 == 0) ? 'b' : 'a';  // one letter run: one piece
  EXPECT_EQ(tok.encode(text), ref.encode_plain(text, micromix::pretok::Splitter::gpt2));
}

TEST(Tokenizer, RandomBytesRoundTripExactly) {
  std::mt19937 g(std::random_device{}());
  TokenizerSpec spec = tokref::random_spec(g, kAlphabet, 300, {{"<|end|>", 3}, {"<user>", 4}});
  for (const char* pre : {"gpt2", "llama3", "qwen2", "smollm", "tekken"}) {
    spec.pre = pre;
    Tokenizer tok(spec);
    for (int t = 0; t < 300; ++t) {
      const std::string bytes = random_bytes(g, 64) + random_text(g, 8) + random_bytes(g, 8);
      for (bool parse_special : {true, false}) {
        const auto ids = tok.encode(bytes, false, parse_special);
        for (int32_t id : ids) ASSERT_TRUE(id >= 0 && id < tok.vocab_size());
        ASSERT_EQ(tok.decode(ids), bytes) << "pre=" << pre;
      }
    }
  }
}

TEST(Tokenizer, SpecialTokensLongestFirstAndNeverSplit) {
  std::mt19937 g(std::random_device{}());
  TokenizerSpec spec = tokref::random_spec(g, kAlphabet, 100,
                                           {{"<|im|>", 3}, {"<|im|>x", 3}, {"<|start|>", 3}, {"<tool>", 4}});
  Tokenizer tok(spec);
  tokref::RefBpe ref(spec);
  const int32_t im = id_of(spec, "<|im|>"), imx = id_of(spec, "<|im|>x"), start = id_of(spec, "<|start|>"),
                tool = id_of(spec, "<tool>");
  const auto plain = [&](const std::string& s) { return ref.encode_plain(s, micromix::pretok::Splitter::gpt2); };
  auto expect = plain("ab ");
  expect.push_back(imx);
  expect.push_back(im);
  auto tail = plain("y");
  expect.insert(expect.end(), tail.begin(), tail.end());
  expect.push_back(start);
  EXPECT_EQ(tok.encode("ab <|im|>x<|im|>y<|start|>"), expect);
  // parse_special=false: control tokens are plain text, user-defined ones are still matched.
  EXPECT_EQ(tok.encode("<|start|>", false, false), plain("<|start|>"));
  auto with_tool = plain("a");
  with_tool.push_back(tool);
  EXPECT_EQ(tok.encode("a<tool>", false, false), with_tool);
  EXPECT_EQ(tok.decode({start, tool}), "<|start|><tool>");
  EXPECT_EQ(tok.encode("<|im"), plain("<|im"));  // a prefix of a special is text
}

TEST(Tokenizer, AddsBosOnlyWhenAskedAndSpecified) {
  std::mt19937 g(std::random_device{}());
  TokenizerSpec spec = tokref::random_spec(g, kAlphabet, 50, {{"<s>", 3}});
  spec.bos_id = id_of(spec, "<s>");
  const auto without = Tokenizer(spec).encode("hi", true);
  spec.add_bos = true;
  Tokenizer tok(spec);
  const auto with = tok.encode("hi", true);
  ASSERT_EQ(with.size(), without.size() + 1);
  EXPECT_EQ(with[0], spec.bos_id);
  EXPECT_EQ(tok.encode("hi", false), without);
  EXPECT_EQ(tok.encode("", true), std::vector<int32_t>{spec.bos_id});
}

TEST(Tokenizer, IgnoreMergesTakesWholeWordsFromTheVocabulary) {
  TokenizerSpec spec;
  spec.tokens = tokref::byte_chars();
  spec.tokens.push_back("ab");
  spec.tokens.push_back("abc");  // reachable only as a whole word
  spec.merges = {"a b"};
  const int32_t ab = 256, abc = 257, c = id_of(spec, "c");
  EXPECT_EQ(Tokenizer(spec).encode("abc"), (std::vector<int32_t>{ab, c}));
  spec.ignore_merges = true;
  EXPECT_EQ(Tokenizer(spec).encode("abc"), std::vector<int32_t>{abc});
  spec.ignore_merges = false;
  spec.pre = "llama-bpe";  // llama.cpp's rule: Llama-3 ignores merges
  EXPECT_EQ(Tokenizer(spec).encode("abc"), std::vector<int32_t>{abc});
}

TEST(Tokenizer, MissingByteTokensAreDroppedOrUnk) {
  TokenizerSpec spec;
  spec.tokens = tokref::byte_chars();
  const std::string x = spec.tokens['x'];
  spec.tokens['x'] = "<unk>";  // no token for byte 'x' any more
  spec.token_types.assign(256, 1);
  spec.token_types['x'] = 3;
  spec.tokens.push_back("ab");
  spec.token_types.push_back(1);
  spec.merges = {"a b"};
  // Dropped before merging: 'a' and 'b' become neighbours and merge (HF without unk_token).
  EXPECT_EQ(Tokenizer(spec).encode("axb", false, false), std::vector<int32_t>{256});
  spec.unk_id = 'x';
  EXPECT_EQ(Tokenizer(spec).encode("axb", false, false), std::vector<int32_t>{256});  // GGUF: no flag
  spec.unk_missing_bytes = true;
  EXPECT_EQ(Tokenizer(spec).encode("axb", false, false), (std::vector<int32_t>{'a', 'x', 'b'}));
}

TEST(Tokenizer, ConcurrentEncodesAgree) {
  std::mt19937 g(std::random_device{}());
  const TokenizerSpec spec = tokref::random_spec(g, kAlphabet, 200);
  const Tokenizer tok(spec);
  std::vector<std::string> texts;
  for (int i = 0; i < 200; ++i) texts.push_back(random_text(g, 40));
  std::vector<std::vector<int32_t>> expect;
  for (auto& t : texts) expect.push_back(tokref::RefBpe(spec).encode_plain(t, micromix::pretok::Splitter::gpt2));
  std::vector<std::thread> threads;
  std::vector<int> bad(4, 0);
  for (int k = 0; k < 4; ++k)
    threads.emplace_back([&, k] {
      for (int rep = 0; rep < 5; ++rep)
        for (size_t i = 0; i < texts.size(); ++i) bad[static_cast<size_t>(k)] += tok.encode(texts[i]) != expect[i];
    });
  for (auto& t : threads) t.join();
  for (int b : bad) EXPECT_EQ(b, 0);
}

TEST(Tokenizer, EverySupportedPreNameWorks) {
  const std::string names = micromix::pretok::supported_splitter_names();
  size_t count = 0;
  for (size_t b = 0; b < names.size();) {
    size_t e = names.find(", ", b);
    if (e == std::string::npos) e = names.size();
    EXPECT_NO_THROW(micromix::pretok::splitter_from_name(names.substr(b, e - b))) << names.substr(b, e - b);
    ++count;
    b = e + 2;
  }
  EXPECT_GE(count, 8u);
  for (const char* n : {"smollm", "llama-bpe", "qwen2", "tekken", "gpt2", "default"})
    EXPECT_NE(names.find(n), std::string::npos) << n;
  EXPECT_THROW(micromix::pretok::splitter_from_name(""), micromix::Error);
  EXPECT_THROW(micromix::pretok::splitter_from_name("LLAMA3"), micromix::Error);
}

TEST(Tokenizer, MalformedSpecsThrowClearErrors) {
  const auto expect_error = [](TokenizerSpec spec, const std::string& needle) {
    try {
      Tokenizer t(std::move(spec));
      ADD_FAILURE() << "no error, wanted '" << needle << "'";
    } catch (const micromix::Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  TokenizerSpec ok;
  ok.tokens = tokref::byte_chars();
  ok.tokens.push_back("ab");
  ok.merges = {"a b"};
  EXPECT_NO_THROW(Tokenizer{ok});
  auto s = ok;
  s.pre = "bloom";
  expect_error(s, "supported: gpt2");
  s = ok, s.model = "llama";
  expect_error(s, "only byte-level BPE");
  s = ok, s.merges = {"ab"};
  expect_error(s, "not 'left right'");
  s = ok, s.merges = {"a q9"};
  expect_error(s, "not in the vocabulary");
  s = ok, s.merges = {"b a"};
  expect_error(s, "result 'ba'");
  s = ok, s.token_types = {1, 2};
  expect_error(s, "token types");
  s = ok, s.bos_id = 9999;
  expect_error(s, "out of range");
  s = ok, s.add_bos = true;
  expect_error(s, "BOS");
  s = ok, s.tokens.clear(), s.merges.clear();
  expect_error(s, "empty vocabulary");
  Tokenizer tok(ok);
  EXPECT_THROW(tok.decode({257}), micromix::Error);
  EXPECT_THROW(tok.token_text(-1), micromix::Error);
  EXPECT_EQ(tok.token_id("ab"), 256);
  EXPECT_EQ(tok.token_id("zz"), -1);
}
