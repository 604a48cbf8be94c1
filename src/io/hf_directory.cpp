// Placeholder until the safetensors/HF loader lands.
#include "io/hf_directory.hpp"

#include "micromix/error.hpp"

namespace micromix::io {

ModelSource load_hf_directory(const std::string& dir) {
  fail("loading Hugging Face directory '{}': not implemented yet", dir);
}

}  // namespace micromix::io
