// Byte-level BPE: special-token partition -> pre-tokenizer pieces -> bytes mapped to GPT-2's
// printable code points -> merges by rank (priority queue per piece, cached per piece).
#include "micromix/tokenizer.hpp"

#include <algorithm>
#include <array>
#include <mutex>
#include <queue>
#include <unordered_map>

#include "micromix/error.hpp"
#include "model/pretokenize.hpp"
#include "model/unicode_tables.hpp"

namespace micromix {

namespace {

constexpr int32_t kTypeUnknown = 2, kTypeControl = 3, kTypeUserDefined = 4;

void append_utf8(std::string& s, uint32_t cp) {
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (cp >> 18));
    s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the other 68 bytes to
// U+0100.. in byte order, so every token is printable text.
std::array<uint32_t, 256> byte_to_codepoint_table() {
  std::array<uint32_t, 256> t{};
  uint32_t next = 256;
  for (uint32_t b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    t[b] = printable ? b : next++;
  }
  return t;
}

uint64_t pair_key(int32_t a, int32_t b) { return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b); }

struct Merge {
  int32_t rank, result;
};

struct Special {
  std::string text;
  int32_t id;
  bool always;  // user-defined: matched even when parse_special is false
};

}  // namespace

struct Tokenizer::Impl {
  TokenizerSpec spec;
  pretok::Splitter splitter{};
  bool ignore_merges = false;
  bool unk_bytes = false;  // missing byte tokens -> unk_id (else dropped)
  std::array<std::string, 256> byte_text;        // byte -> its mapped code point as UTF-8
  std::array<int32_t, 256> byte_id{};            // byte -> id of its one-char token, -1 if none
  std::unordered_map<std::string, int32_t> id_of;  // token text -> id (first one wins)
  std::unordered_map<uint64_t, Merge> merges;      // (left id, right id) -> rank, merged id
  std::vector<std::string> token_bytes;            // id -> decoded bytes
  std::array<std::vector<Special>, 256> specials_by_first_byte;  // longest first

  mutable std::mutex cache_mutex;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache;  // piece bytes -> ids

  void build();
  void bpe(std::string_view piece, std::vector<int32_t>& out) const;
  void encode_piece(std::string_view piece, std::vector<int32_t>& out) const;
  void encode_fragment(std::string_view text, std::vector<int32_t>& out) const;
};

void Tokenizer::Impl::build() {
  const auto n = spec.tokens.size();
  MM_CHECK(spec.model == "gpt2", "tokenizer: unsupported model '{}' (only byte-level BPE 'gpt2')", spec.model);
  MM_CHECK(n > 0, "tokenizer: empty vocabulary");
  MM_CHECK(n <= static_cast<size_t>(INT32_MAX), "tokenizer: vocabulary too large ({})", n);
  MM_CHECK(spec.token_types.empty() || spec.token_types.size() == n,
           "tokenizer: {} token types for {} tokens", spec.token_types.size(), n);
  for (int32_t* id : {&spec.bos_id, &spec.eos_id, &spec.pad_id, &spec.unk_id})
    MM_CHECK(*id >= -1 && *id < static_cast<int32_t>(n), "tokenizer: special id {} out of range [0, {})", *id, n);
  MM_CHECK(!spec.add_bos || spec.bos_id >= 0, "tokenizer: add_bos without a BOS id");
  splitter = pretok::splitter_from_name(spec.pre);
  ignore_merges = spec.ignore_merges || splitter == pretok::Splitter::llama3;  // llama.cpp's rule
  unk_bytes = spec.unk_missing_bytes && spec.unk_id >= 0;

  const auto cp_of_byte = byte_to_codepoint_table();
  std::unordered_map<uint32_t, uint8_t> byte_of_cp;
  for (uint32_t b = 0; b < 256; ++b) {
    append_utf8(byte_text[b], cp_of_byte[b]);
    byte_of_cp[cp_of_byte[b]] = static_cast<uint8_t>(b);
  }

  id_of.reserve(n);
  token_bytes.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const std::string& t = spec.tokens[i];
    const int32_t id = static_cast<int32_t>(i);
    id_of.emplace(t, id);
    const int32_t type = spec.token_types.empty() ? 1 : spec.token_types[i];
    if (type == kTypeControl || type == kTypeUserDefined || type == kTypeUnknown) {
      token_bytes[i] = t;  // literal text
      if (!t.empty())
        specials_by_first_byte[static_cast<uint8_t>(t[0])].push_back({t, id, type == kTypeUserDefined});
      continue;
    }
    // Normal token: map each code point back to its byte; a code point outside the mapping
    // (not a byte-level vocabulary) is kept as its UTF-8.
    std::string& bytes = token_bytes[i];
    for (size_t pos = 0; pos < t.size();) {
      const auto d = unicode::decode_utf8(t, pos);
      auto it = d.cp == unicode::kInvalid ? byte_of_cp.end() : byte_of_cp.find(d.cp);
      if (it != byte_of_cp.end()) bytes += static_cast<char>(it->second);
      else bytes.append(t, pos, d.len);
      pos += d.len;
    }
  }
  for (auto& v : specials_by_first_byte)
    std::stable_sort(v.begin(), v.end(), [](const Special& a, const Special& b) { return a.text.size() > b.text.size(); });
  for (uint32_t b = 0; b < 256; ++b) {
    auto it = id_of.find(byte_text[b]);
    byte_id[b] = it == id_of.end() ? -1 : it->second;
  }

  merges.reserve(spec.merges.size());
  for (size_t r = 0; r < spec.merges.size(); ++r) {
    const std::string& m = spec.merges[r];
    const size_t sp = m.size() > 1 ? m.find(' ', 1) : std::string::npos;
    MM_CHECK(sp != std::string::npos && sp + 1 < m.size(), "tokenizer: merge #{} '{}' is not 'left right'", r, m);
    const std::string left = m.substr(0, sp), right = m.substr(sp + 1);
    auto l = id_of.find(left), rt = id_of.find(right), res = id_of.find(left + right);
    MM_CHECK(l != id_of.end() && rt != id_of.end(), "tokenizer: merge #{} '{}' uses a token not in the vocabulary", r, m);
    MM_CHECK(res != id_of.end(), "tokenizer: merge #{} '{}': result '{}' is not in the vocabulary", r, m, left + right);
    merges.emplace(pair_key(l->second, rt->second), Merge{static_cast<int32_t>(r), res->second});  // first rank wins
  }
}

// Merges the bytes of one piece: lowest rank first, leftmost among equal ranks, until no
// adjacent pair has a merge. Symbols form a linked list over the byte positions.
void Tokenizer::Impl::bpe(std::string_view piece, std::vector<int32_t>& out) const {
  const int n = static_cast<int>(piece.size());
  struct Sym {
    int32_t id;
    int prev, next;
  };
  std::vector<Sym> sym;
  sym.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    int32_t id = byte_id[static_cast<uint8_t>(piece[i])];
    if (id < 0 && !unk_bytes) continue;  // dropped: its neighbours become adjacent (HF)
    const int k = static_cast<int>(sym.size());
    sym.push_back({id < 0 ? spec.unk_id : id, k - 1, -1});
    if (k > 0) sym[k - 1].next = k;
  }
  const int m = static_cast<int>(sym.size());
  struct Cand {
    int32_t rank;
    int left;
    int32_t left_id, right_id;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  const auto push = [&](int left) {
    if (left < 0) return;
    const int right = sym[left].next;
    if (right < 0 || sym[left].id < 0 || sym[right].id < 0) return;
    auto it = merges.find(pair_key(sym[left].id, sym[right].id));
    if (it != merges.end()) heap.push({it->second.rank, left, sym[left].id, sym[right].id});
  };
  for (int i = 0; i + 1 < m; ++i) push(i);
  while (!heap.empty()) {
    const Cand c = heap.top();
    heap.pop();
    const int right = sym[c.left].next;
    if (sym[c.left].id != c.left_id || right < 0 || sym[right].id != c.right_id) continue;  // stale
    sym[c.left].id = merges.at(pair_key(c.left_id, c.right_id)).result;
    sym[c.left].next = sym[right].next;
    if (sym[right].next >= 0) sym[sym[right].next].prev = c.left;
    sym[right].id = -2;  // dead
    push(sym[c.left].prev);
    push(c.left);
  }
  for (int i = m > 0 ? 0 : -1; i >= 0; i = sym[i].next) out.push_back(sym[i].id);
}

void Tokenizer::Impl::encode_piece(std::string_view piece, std::vector<int32_t>& out) const {
  constexpr size_t kMaxCachedPiece = 64, kMaxCacheEntries = 1 << 18;
  const bool cacheable = piece.size() <= kMaxCachedPiece;
  std::string key(piece);
  if (cacheable) {
    std::lock_guard lock(cache_mutex);
    if (auto it = cache.find(key); it != cache.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t first = out.size();
  bool done = false;
  if (ignore_merges) {
    std::string mapped;
    for (char ch : piece) mapped += byte_text[static_cast<uint8_t>(ch)];
    if (auto it = id_of.find(mapped); it != id_of.end()) out.push_back(it->second), done = true;
  }
  if (!done) bpe(piece, out);
  if (cacheable) {
    std::lock_guard lock(cache_mutex);
    if (cache.size() >= kMaxCacheEntries) cache.clear();
    cache.emplace(std::move(key), std::vector<int32_t>(out.begin() + static_cast<std::ptrdiff_t>(first), out.end()));
  }
}

void Tokenizer::Impl::encode_fragment(std::string_view text, std::vector<int32_t>& out) const {
  thread_local std::vector<pretok::Piece> pieces;
  pieces.clear();
  pretok::split(splitter, text, pieces);
  for (const auto& p : pieces) encode_piece(text.substr(p.begin, p.end - p.begin), out);
}

Tokenizer::Tokenizer(TokenizerSpec spec) : impl_(std::make_unique<Impl>()) {
  impl_->spec = std::move(spec);
  impl_->build();
}
Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 2);
  if (add_special && impl_->spec.add_bos) out.push_back(impl_->spec.bos_id);
  // Partition at special tokens: at each byte the longest one that starts there.
  size_t start = 0;
  for (size_t pos = 0; pos < text.size();) {
    const Special* hit = nullptr;
    for (const Special& s : impl_->specials_by_first_byte[static_cast<uint8_t>(text[pos])])
      if ((parse_special || s.always) && text.compare(pos, s.text.size(), s.text) == 0) {
        hit = &s;
        break;
      }
    if (!hit) {
      ++pos;
      continue;
    }
    if (pos > start) impl_->encode_fragment(text.substr(start, pos - start), out);
    out.push_back(hit->id);
    pos += hit->text.size();
    start = pos;
  }
  if (start < text.size()) impl_->encode_fragment(text.substr(start), out);
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string s;
  for (int32_t id : ids) s += token_text(id);
  return s;
}

std::string Tokenizer::token_text(int32_t id) const {
  MM_CHECK(id >= 0 && id < vocab_size(), "tokenizer: token id {} out of range [0, {})", id, vocab_size());
  return impl_->token_bytes[static_cast<size_t>(id)];
}

int32_t Tokenizer::vocab_size() const { return static_cast<int32_t>(impl_->spec.tokens.size()); }

int32_t Tokenizer::token_id(std::string_view token) const {
  auto it = impl_->id_of.find(std::string(token));
  return it == impl_->id_of.end() ? -1 : it->second;
}

const TokenizerSpec& Tokenizer::spec() const { return impl_->spec; }

}  // namespace micromix
