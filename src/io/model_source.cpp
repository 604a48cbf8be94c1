// load_model_source: picks the loader from what the path is.
#include <filesystem>

#include "io/gguf.hpp"
#include "io/hf_directory.hpp"
#include "micromix/error.hpp"
#include "micromix/model_source.hpp"
#include "micromix/quant_checkpoint.hpp"

namespace micromix {

ModelSource load_model_source(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (ec || !fs::exists(st)) fail("loading model '{}': no such file or directory", path);
  if (fs::is_directory(st)) return io::load_hf_directory(path);
  if (fs::is_regular_file(st)) {
    if (io::gguf::has_gguf_magic(path)) return io::gguf::load_model(path);
    if (is_quantized_checkpoint(path)) return load_quantized_checkpoint(path);
    fail("loading model '{}': neither a GGUF file (it does not start with \"GGUF\") nor a micromix quantized "
         "checkpoint; expected a .gguf file, a checkpoint written by `micromix quantize`, or a Hugging Face "
         "directory (config.json + *.safetensors + tokenizer.json)",
         path);
  }
  fail("loading model '{}': neither a regular file nor a directory", path);
}

}  // namespace micromix
