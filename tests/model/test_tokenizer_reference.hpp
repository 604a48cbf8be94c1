// Test helpers for the tokenizer: GPT-2's byte mapping written out independently, a naive BPE
// (repeatedly merge the leftmost lowest-rank pair, on strings), and random vocabularies "trained"
// by merging random adjacent pairs of a random corpus.
#pragma once
#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "micromix/tokenizer.hpp"
#include "model/pretokenize.hpp"

namespace tokref {

inline std::string utf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

// bytes_to_unicode() of GPT-2's encoder.py: the "printable" bytes keep their code point, the
// others get 256, 257, ... in byte order.
inline std::vector<std::string> byte_chars() {
  std::vector<int> printable;
  for (int b = '!'; b <= '~'; ++b) printable.push_back(b);
  for (int b = 0xA1; b <= 0xAC; ++b) printable.push_back(b);
  for (int b = 0xAE; b <= 0xFF; ++b) printable.push_back(b);
  std::vector<std::string> out(256);
  int n = 0;
  for (int b = 0; b < 256; ++b) {
    bool p = std::find(printable.begin(), printable.end(), b) != printable.end();
    out[static_cast<size_t>(b)] = utf8(p ? static_cast<uint32_t>(b) : static_cast<uint32_t>(256 + n++));
  }
  return out;
}

struct RefBpe {
  std::vector<std::string> bc = byte_chars();
  std::map<std::pair<std::string, std::string>, int> rank;
  std::map<std::string, int32_t> id;

  explicit RefBpe(const micromix::TokenizerSpec& spec) {
    for (size_t i = 0; i < spec.tokens.size(); ++i) id.emplace(spec.tokens[i], static_cast<int32_t>(i));
    for (size_t r = 0; r < spec.merges.size(); ++r) {
      const auto sp = spec.merges[r].find(' ');
      rank.emplace(std::pair{spec.merges[r].substr(0, sp), spec.merges[r].substr(sp + 1)}, static_cast<int>(r));
    }
  }
  // One pre-token -> symbol strings after all merges.
  std::vector<std::string> merge_word(const std::string& bytes) const {
    std::vector<std::string> sym;
    for (unsigned char c : bytes) sym.push_back(bc[c]);
    for (;;) {
      int best = -1;
      size_t at = 0;
      for (size_t i = 0; i + 1 < sym.size(); ++i) {
        auto it = rank.find({sym[i], sym[i + 1]});
        if (it != rank.end() && (best < 0 || it->second < best)) best = it->second, at = i;
      }
      if (best < 0) return sym;
      sym[at] += sym[at + 1];
      sym.erase(sym.begin() + static_cast<std::ptrdiff_t>(at) + 1);
    }
  }
  // ignore_merges: a piece that is a whole token is that token.
  std::vector<int32_t> encode_plain(const std::string& text, micromix::pretok::Splitter s,
                                    bool ignore_merges = false) const {
    std::vector<micromix::pretok::Piece> pieces;
    micromix::pretok::split(s, text, pieces);
    std::vector<int32_t> ids;
    for (auto p : pieces) {
      const std::string piece = text.substr(p.begin, p.end - p.begin);
      std::string mapped;
      for (unsigned char c : piece) mapped += bc[c];
      if (ignore_merges && id.count(mapped)) {
        ids.push_back(id.at(mapped));
        continue;
      }
      for (const auto& t : merge_word(piece)) ids.push_back(id.at(t));
    }
    return ids;
  }
};

// A random byte-level vocabulary: the 256 byte tokens and `n_merges` merges learnt from random
// words over `alphabet`, plus the extra literal tokens; token ids shuffled.
inline micromix::TokenizerSpec random_spec(std::mt19937& g, const std::vector<std::string>& alphabet, int n_merges,
                                           const std::vector<std::pair<std::string, int32_t>>& literal_tokens = {}) {
  micromix::TokenizerSpec spec;
  spec.pre = "gpt2";
  std::vector<std::string> tokens = byte_chars();
  std::vector<int32_t> types(256, 1);
  for (auto& [t, ty] : literal_tokens) tokens.push_back(t), types.push_back(ty);
  RefBpe ref(spec);  // empty: only the byte mapping is used until merges exist
  auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(g); };
  std::map<std::string, bool> known(std::map<std::string, bool>{});
  for (auto& t : tokens) known[t] = true;
  for (int tries = 0; static_cast<int>(spec.merges.size()) < n_merges && tries < n_merges * 50; ++tries) {
    std::string word;
    const size_t len = 2 + pick(6);
    for (size_t k = 0; k < len; ++k) word += alphabet[pick(alphabet.size())];
    auto sym = ref.merge_word(word);
    if (sym.size() < 2) continue;
    const size_t i = pick(sym.size() - 1);
    if (ref.rank.count({sym[i], sym[i + 1]})) continue;
    ref.rank.emplace(std::pair{sym[i], sym[i + 1]}, static_cast<int>(spec.merges.size()));
    spec.merges.push_back(sym[i] + " " + sym[i + 1]);
    if (!known[sym[i] + sym[i + 1]]) {
      known[sym[i] + sym[i + 1]] = true;
      tokens.push_back(sym[i] + sym[i + 1]);
      types.push_back(1);
    }
  }
  std::vector<size_t> perm(tokens.size());
  for (size_t i = 0; i < perm.size(); ++i) perm[i] = i;
  std::shuffle(perm.begin(), perm.end(), g);
  spec.tokens.resize(tokens.size());
  spec.token_types.resize(tokens.size());
  for (size_t i = 0; i < perm.size(); ++i) spec.tokens[perm[i]] = tokens[i], spec.token_types[perm[i]] = types[i];
  return spec;
}

}  // namespace tokref
