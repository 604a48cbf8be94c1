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
                                         // "qwen2", "smollm", "tekken", ... (GGUF tokenizer.ggml.pre;
                                         // the list: pretok::supported_splitter_names())
  std::vector<std::string> tokens;       // id -> token text (byte-level unicode mapping)
  std::vector<int32_t> token_types;      // GGUF token types (1 normal, 3 control, 4 user-defined...)
  std::vector<std::string> merges;       // "a b" pairs in rank order
  int32_t bos_id = -1, eos_id = -1, pad_id = -1, unk_id = -1;
  bool add_bos = false;                  // prepend BOS when encoding with add_special
  // A pre-token that is a whole vocabulary entry becomes that token without merging (HF
  // "ignore_merges", Llama-3). Also on, whatever this says, for every pre name with the Llama-3
  // regex ("llama3", "llama-bpe", "llama-v3", "falcon3", "pixtral"), as in llama.cpp (GGUF has no
  // such key).
  bool ignore_merges = false;
  // A byte whose one-character token is missing from the vocabulary (SmolLM2 lacks 21) becomes
  // unk_id when this is set (HF model.unk_token); otherwise it is dropped before merging, as HF
  // does without an unk_token (and GGUF files carry no such flag).
  bool unk_missing_bytes = false;
};

// Reads a Hugging Face tokenizer.json (model BPE with byte-level pre-tokenizer): vocab, merges
// ("a b" or ["a", "b"]), added_tokens (special -> token type 3 control, else 4 user-defined),
// pre_tokenizer mapped to a named splitter, post_processor's leading BOS -> add_bos/bos_id.
// Throws micromix::Error naming the problem for anything unsupported or malformed.
TokenizerSpec tokenizer_spec_from_json(const std::string& path);
TokenizerSpec tokenizer_spec_from_json_text(const std::string& json_text);

class Tokenizer {
 public:
  explicit Tokenizer(TokenizerSpec spec);
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  // Text -> ids. Control tokens (type 2/3) written literally in the text are matched as such
  // (leftmost, longest first) when parse_special is true; user-defined tokens (type 4) always,
  // as in llama.cpp and HF's non-special added tokens. add_special prepends BOS when the spec
  // says so. Any bytes are accepted (invalid UTF-8 is encoded bytewise).
  std::vector<int32_t> encode(std::string_view text, bool add_special = false, bool parse_special = true) const;
  // ids -> UTF-8 text (bytes; may end mid-character for a prefix of a sequence). Control and
  // user-defined tokens decode to their literal text. An id out of range -> micromix::Error.
  std::string decode(const std::vector<int32_t>& ids) const;
  std::string token_text(int32_t id) const;  // decoded bytes of one token
  int32_t vocab_size() const;
  int32_t token_id(std::string_view token) const;  // id of a token by its stored text, -1 if none
  const TokenizerSpec& spec() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace micromix
