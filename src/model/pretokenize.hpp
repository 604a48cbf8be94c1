// Pre-tokenizers: split text into the pieces that byte-level BPE then encodes one by one.
// Each splitter is a hand-written matcher for one regex (leftmost-first alternation with the
// backtracking the regex engines do), applied like Hugging Face's Split(behavior = Isolated):
// every match is one piece. Text need not be valid UTF-8: a stray byte is one code point of
// class "other" (not letter, number or space).
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace micromix::pretok {

enum class Splitter {
  gpt2,    // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  llama3,  // (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
           //   ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
  qwen2,   // llama3 with \p{N} (single digits) in place of \p{N}{1,3}
  smollm,  // \p{N} isolated first, then gpt2 on each stretch between (HF: Digits(individual) +
           // ByteLevel(use_regex); llama.cpp: regexes "\p{N}" then the gpt2 one)
  tekken,  // Mistral-Nemo: [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|
           //   [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}|
           //   ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
};

// Names as in GGUF tokenizer.ggml.pre (and a few aliases); unknown -> micromix::Error listing
// the supported names.
Splitter splitter_from_name(const std::string& name);
std::string supported_splitter_names();  // "gpt2, default, ..."

// The regex string that Hugging Face tokenizer.json files use for a splitter (Split pattern).
// gpt2/smollm: the ByteLevel pre-tokenizer's built-in one.
std::string_view splitter_regex(Splitter s);

struct Piece {
  size_t begin, end;  // byte offsets into the text
};
// Appends the pieces of text, in order; they tile the text exactly.
void split(Splitter s, std::string_view text, std::vector<Piece>& out);

}  // namespace micromix::pretok
