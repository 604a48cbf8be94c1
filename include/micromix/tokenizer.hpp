// Byte-level BPE tokenizer (GPT-2 style), as stored in GGUF (tokenizer.ggml.*) and in Hugging Face
// tokenizer.json. Loaders fill a TokenizerSpec; Tokenizer encodes and decodes with exact ids.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace micromix {

struct TokenizerSpec {
  std::string model = "gpt2";            // only byte-level BPE ("gpt2") is supported
  std::string pre = "default";           // pre-tokenizer name: "gpt2"/"default", "llama3"/"llama-bpe",
                                         // "qwen2", "smollm", ... (GGUF tokenizer.ggml.pre)
  std::vector<std::string> tokens;       // id -> token text (byte-level unicode mapping)
  std::vector<int32_t> token_types;      // GGUF token types (1 normal, 3 control, 4 user-defined...)
  std::vector<std::string> merges;       // "a b" pairs in rank order
  int32_t bos_id = -1, eos_id = -1, pad_id = -1, unk_id = -1;
  bool add_bos = false;                  // prepend BOS when encoding with add_special
};

class Tokenizer {
 public:
  explicit Tokenizer(TokenizerSpec spec);
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  // Text -> ids. Special/control tokens written literally in the text are matched as such when
  // parse_special is true. add_special prepends BOS when the spec says so.
  std::vector<int32_t> encode(std::string_view text, bool add_special = false, bool parse_special = true) const;
  // ids -> UTF-8 text (bytes; may end mid-character for a prefix of a sequence).
  std::string decode(const std::vector<int32_t>& ids) const;
  std::string token_text(int32_t id) const;  // decoded bytes of one token
  int32_t vocab_size() const;
  const TokenizerSpec& spec() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace micromix
