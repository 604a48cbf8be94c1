// libFuzzer target: arbitrary bytes as Hugging Face JSON files: config.json (-> ModelConfig, and
// back to JSON) and tokenizer.json (-> TokenizerSpec, and back to JSON). Only micromix::Error may
// escape the parsers. See tests/fuzz/README.md.
#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "io/hf_config.hpp"
#include "micromix/error.hpp"
#include "micromix/tokenizer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const micromix::ModelConfig c = micromix::io::hf_config_from_json(nlohmann::json::parse(text), "fuzz");
    (void)micromix::io::hf_config_to_json(c, {}, "float32").dump();
  } catch (const micromix::Error&) {
  } catch (const nlohmann::json::exception&) {  // not JSON at all: the loader reports that itself
  }
  try {
    const micromix::TokenizerSpec s = micromix::tokenizer_spec_from_json_text(text);
    (void)micromix::io::hf_tokenizer_json(s).dump();
  } catch (const micromix::Error&) {
  }
  return 0;
}
