// Hand-written matchers for the pre-tokenizer regexes (see pretokenize.hpp for the patterns).
// Each matcher gets the text as decoded code points with their classes and returns the end of
// the match that starts at i; alternatives are tried in the regex's order.
#include "model/pretokenize.hpp"

#include <algorithm>
#include <array>

#include "micromix/error.hpp"
#include "model/unicode_tables.hpp"

namespace micromix::unicode {

namespace {
CharClass lookup_runs(uint32_t cp) {
  // Last run whose first code point is <= cp.
  const uint32_t* begin = kCodepointRuns;
  const uint32_t* end = kCodepointRuns + kCodepointRunCount;
  const uint32_t* it = std::upper_bound(begin, end, cp, [](uint32_t v, uint32_t run) { return v < (run >> 4); });
  return static_cast<CharClass>(*(it - 1) & 15u);
}
}  // namespace

CharClass char_class(uint32_t cp) {
  // The BMP through a flat table (64 KiB), the rest by binary search over the runs.
  static const std::array<CharClass, 0x10000>* bmp = [] {
    auto* t = new std::array<CharClass, 0x10000>();
    for (size_t r = 0; r < kCodepointRunCount; ++r) {
      const uint32_t first = kCodepointRuns[r] >> 4;
      if (first >= 0x10000) break;
      const uint32_t last = r + 1 < kCodepointRunCount ? std::min<uint32_t>(kCodepointRuns[r + 1] >> 4, 0x10000) : 0x10000;
      std::fill(t->begin() + first, t->begin() + last, static_cast<CharClass>(kCodepointRuns[r] & 15u));
    }
    return t;
  }();
  if (cp < 0x10000) return (*bmp)[cp];
  if (cp > 0x10FFFF) return CharClass::other;
  return lookup_runs(cp);
}

Decoded decode_utf8(std::string_view s, size_t pos) {
  const auto b = [&](size_t k) { return static_cast<uint8_t>(s[pos + k]); };
  const uint8_t c0 = b(0);
  if (c0 < 0x80) return {c0, 1};
  uint32_t len = 0, cp = 0, min = 0;
  if ((c0 & 0xE0) == 0xC0) len = 2, cp = c0 & 0x1Fu, min = 0x80;
  else if ((c0 & 0xF0) == 0xE0) len = 3, cp = c0 & 0x0Fu, min = 0x800;
  else if ((c0 & 0xF8) == 0xF0) len = 4, cp = c0 & 0x07u, min = 0x10000;
  else return {kInvalid, 1};
  if (pos + len > s.size()) return {kInvalid, 1};
  for (uint32_t k = 1; k < len; ++k) {
    if ((b(k) & 0xC0) != 0x80) return {kInvalid, 1};
    cp = (cp << 6) | (b(k) & 0x3Fu);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return {kInvalid, 1};
  return {cp, len};
}

}  // namespace micromix::unicode

namespace micromix::pretok {

using unicode::CharClass;

namespace {

// The text as code points: cp[i], cls[i], byte offset off[i] (off has n + 1 entries).
struct Text {
  std::vector<uint32_t> cp;
  std::vector<CharClass> cls;
  std::vector<size_t> off;
  size_t n = 0;

  void load(std::string_view s) {
    cp.clear(), cls.clear(), off.clear();
    for (size_t pos = 0; pos < s.size();) {
      const auto d = unicode::decode_utf8(s, pos);
      cp.push_back(d.cp);
      cls.push_back(unicode::char_class(d.cp));
      off.push_back(pos);
      pos += d.len;
    }
    off.push_back(s.size());
    n = cp.size();
  }
  bool letter(size_t i) const { return i < n && unicode::is_letter(cls[i]); }
  bool number(size_t i) const { return i < n && cls[i] == CharClass::N; }
  bool space(size_t i) const { return i < n && cls[i] == CharClass::space; }
  // [^\s\p{L}\p{N}]
  bool other(size_t i) const { return i < n && !unicode::is_letter(cls[i]) && cls[i] != CharClass::N && cls[i] != CharClass::space; }
  bool is(size_t i, uint32_t c) const { return i < n && cp[i] == c; }
  bool newline(size_t i) const { return i < n && (cp[i] == '\r' || cp[i] == '\n'); }
  // [^\r\n\p{L}\p{N}]
  bool not_nl_letter_number(size_t i) const {
    return i < n && !newline(i) && !unicode::is_letter(cls[i]) && cls[i] != CharClass::N;
  }
  // tekken: [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}] and [\p{Ll}\p{Lm}\p{Lo}\p{M}]
  bool upperish(size_t i) const {
    return i < n && (cls[i] == CharClass::Lu || cls[i] == CharClass::Lt || cls[i] == CharClass::Lm ||
                     cls[i] == CharClass::Lo || cls[i] == CharClass::M);
  }
  bool lowerish(size_t i) const {
    return i < n && (cls[i] == CharClass::Ll || cls[i] == CharClass::Lm || cls[i] == CharClass::Lo ||
                     cls[i] == CharClass::M);
  }
  template <class Pred>
  size_t run(size_t i, Pred p) const {
    while (p(i)) ++i;
    return i;
  }
};

constexpr size_t kNoMatch = static_cast<size_t>(-1);

// 's|'t|'re|'ve|'m|'ll|'d, case-sensitive or (?i) (where s also matches U+017F LONG S by
// Unicode simple case folding).
size_t match_contraction(const Text& t, size_t i, bool ignore_case) {
  if (!t.is(i, '\'') || i + 1 >= t.n) return kNoMatch;
  const auto lower = [&](size_t k) -> uint32_t {
    if (k >= t.n) return 0;
    uint32_t c = t.cp[k];
    if (!ignore_case) return c;
    if (c >= 'A' && c <= 'Z') return c + 32;
    if (c == 0x17F) return 's';
    return c;
  };
  const uint32_t a = lower(i + 1);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
  const uint32_t b = lower(i + 2);
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
  return kNoMatch;
}

// \s+(?!\S)|\s+ at a whitespace char: a run followed by a non-space gives back its last char
// (to become the optional prefix of the next piece) unless it is that char alone.
size_t match_space_tail(const Text& t, size_t i) {
  const size_t j = t.run(i, [&](size_t k) { return t.space(k); });
  if (j < t.n && j - i >= 2) return j - 1;
  return j;
}

size_t match_gpt2(const Text& t, size_t i) {
  if (size_t e = match_contraction(t, i, false); e != kNoMatch) return e;
  const auto letter = [&](size_t k) { return t.letter(k); };
  const auto number = [&](size_t k) { return t.number(k); };
  const auto other = [&](size_t k) { return t.other(k); };
  const bool sp = t.is(i, ' ');
  if (sp && t.letter(i + 1)) return t.run(i + 1, letter);
  if (t.letter(i)) return t.run(i, letter);
  if (sp && t.number(i + 1)) return t.run(i + 1, number);
  if (t.number(i)) return t.run(i, number);
  if (sp && t.other(i + 1)) return t.run(i + 1, other);
  if (t.other(i)) return t.run(i, other);
  if (t.space(i)) return match_space_tail(t, i);
  return i + 1;  // unreachable: every class is covered above
}

// \s*[\r\n]+ at a whitespace char: up to and including the last \r or \n of the run.
size_t match_space_newlines(const Text& t, size_t i) {
  const size_t j = t.run(i, [&](size_t k) { return t.space(k); });
  for (size_t k = j; k > i; --k)
    if (t.newline(k - 1)) return k;
  return kNoMatch;
}

// ` ?[^\s\p{L}\p{N}]+[\r\n]*` (also_slash: tekken's [\r\n/]*)
size_t match_punct_run(const Text& t, size_t i, bool also_slash) {
  size_t s = i;
  if (t.is(i, ' ') && t.other(i + 1)) s = i + 1;
  else if (!t.other(i)) return kNoMatch;
  size_t j = t.run(s, [&](size_t k) { return t.other(k); });
  return t.run(j, [&](size_t k) { return t.newline(k) || (also_slash && t.is(k, '/')); });
}

size_t match_llama3(const Text& t, size_t i, size_t max_digits) {
  if (size_t e = match_contraction(t, i, true); e != kNoMatch) return e;
  const auto letter = [&](size_t k) { return t.letter(k); };
  if (t.not_nl_letter_number(i) && t.letter(i + 1)) return t.run(i + 1, letter);
  if (t.letter(i)) return t.run(i, letter);
  if (t.number(i)) {
    size_t j = i;
    while (j - i < max_digits && t.number(j)) ++j;
    return j;
  }
  if (size_t e = match_punct_run(t, i, false); e != kNoMatch) return e;
  if (t.space(i)) {
    if (size_t e = match_space_newlines(t, i); e != kNoMatch) return e;
    return match_space_tail(t, i);
  }
  return i + 1;
}

// tekken's first two alternatives from start s (after the optional prefix).
size_t tekken_upper_then_lower(const Text& t, size_t s) {  // U*W+ with backtracking of U*
  const size_t u = t.run(s, [&](size_t k) { return t.upperish(k); });
  for (size_t k = u + 1; k-- > s;)
    if (t.lowerish(k)) return t.run(k, [&](size_t q) { return t.lowerish(q); });
  return kNoMatch;
}
size_t tekken_upper_plus(const Text& t, size_t s) {  // U+W*
  const size_t u = t.run(s, [&](size_t k) { return t.upperish(k); });
  if (u == s) return kNoMatch;
  return t.run(u, [&](size_t k) { return t.lowerish(k); });
}

size_t match_tekken(const Text& t, size_t i) {
  const bool prefix = t.not_nl_letter_number(i);
  for (auto alt : {tekken_upper_then_lower, tekken_upper_plus}) {
    if (prefix)
      if (size_t e = alt(t, i + 1); e != kNoMatch) return e;
    if (size_t e = alt(t, i); e != kNoMatch) return e;
  }
  if (t.number(i)) return i + 1;
  if (size_t e = match_punct_run(t, i, true); e != kNoMatch) return e;
  if (t.space(i)) {
    if (size_t e = match_space_newlines(t, i); e != kNoMatch) return e;
    return match_space_tail(t, i);
  }
  return i + 1;
}

template <class Match>
void split_with(const Text& t, Match match, size_t base, std::vector<Piece>& out) {
  for (size_t i = 0; i < t.n;) {
    size_t e = match(t, i);
    if (e <= i || e > t.n) e = i + 1;  // defensive: always progress
    out.push_back({base + t.off[i], base + t.off[e]});
    i = e;
  }
}

void split_text(Splitter s, std::string_view text, size_t base, std::vector<Piece>& out) {
  thread_local Text t;
  t.load(text);
  switch (s) {
    case Splitter::gpt2: split_with(t, match_gpt2, base, out); return;
    case Splitter::llama3: split_with(t, [](const Text& x, size_t i) { return match_llama3(x, i, 3); }, base, out); return;
    case Splitter::qwen2: split_with(t, [](const Text& x, size_t i) { return match_llama3(x, i, 1); }, base, out); return;
    case Splitter::tekken: split_with(t, match_tekken, base, out); return;
    case Splitter::smollm: break;
  }
  // smollm: every \p{N} is its own piece; gpt2 runs on each stretch between them, separately
  // (a regex applied to the pieces of the previous one, as both HF and llama.cpp do).
  std::vector<std::pair<size_t, size_t>> stretches;  // byte ranges; digits as 1-char stretches
  std::vector<bool> is_digit;
  size_t start = 0;
  for (size_t i = 0; i < t.n; ++i)
    if (t.number(i)) {
      if (t.off[i] > start) stretches.push_back({start, t.off[i]}), is_digit.push_back(false);
      stretches.push_back({t.off[i], t.off[i + 1]}), is_digit.push_back(true);
      start = t.off[i + 1];
    }
  if (text.size() > start) stretches.push_back({start, text.size()}), is_digit.push_back(false);
  Text sub;
  for (size_t k = 0; k < stretches.size(); ++k) {
    auto [b, e] = stretches[k];
    if (is_digit[k]) {
      out.push_back({base + b, base + e});
      continue;
    }
    sub.load(text.substr(b, e - b));
    split_with(sub, match_gpt2, base + b, out);
  }
}

struct NameEntry {
  const char* name;
  Splitter splitter;
};
// GGUF tokenizer.ggml.pre names that llama.cpp gives exactly these regexes, and our own names.
// ("default" is GPT-2's regex here; llama.cpp's fallback "default" adds punctuation and digit
// splits, and warns that it degrades generation.)
constexpr NameEntry kNames[] = {
    {"gpt2", Splitter::gpt2},         {"default", Splitter::gpt2},       {"mpt", Splitter::gpt2},
    {"olmo", Splitter::gpt2},         {"llama3", Splitter::llama3},      {"llama-bpe", Splitter::llama3},
    {"llama-v3", Splitter::llama3},   {"falcon3", Splitter::llama3},     {"pixtral", Splitter::llama3},
    {"qwen2", Splitter::qwen2},       {"stablelm2", Splitter::qwen2},    {"smollm", Splitter::smollm},
    {"starcoder", Splitter::smollm},  {"refact", Splitter::smollm},      {"command-r", Splitter::smollm},
    {"codeshell", Splitter::smollm},  {"exaone", Splitter::smollm},      {"tekken", Splitter::tekken},
};

}  // namespace

Splitter splitter_from_name(const std::string& name) {
  for (const auto& e : kNames)
    if (name == e.name) return e.splitter;
  fail("tokenizer: unsupported pre-tokenizer '{}' (supported: {})", name, supported_splitter_names());
}

std::string supported_splitter_names() {
  std::string s;
  for (const auto& e : kNames) s += (s.empty() ? "" : ", ") + std::string(e.name);
  return s;
}

std::string_view splitter_regex(Splitter s) {
  switch (s) {
    case Splitter::gpt2:
    case Splitter::smollm:
      return R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
    case Splitter::llama3:
      return R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
    case Splitter::qwen2:
      return R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
    case Splitter::tekken:
      return R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  }
  return {};
}

void split(Splitter s, std::string_view text, std::vector<Piece>& out) { split_text(s, text, 0, out); }

}  // namespace micromix::pretok
