// libFuzzer target: arbitrary bytes as a GGUF file, through the reader and the model adapter
// (config, tokenizer, Q/K un-permutation). Accepted tensors are read in full and small ones
// dequantized, so AddressSanitizer sees any view past the input. See tests/fuzz/README.md.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "io/gguf.hpp"
#include "micromix/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<uint8_t> file(data, data + size);  // exact-size heap copy for ASan
  try {
    const auto f = micromix::io::gguf::File::from_memory(file, "fuzz");
    unsigned sum = 0;
    for (const auto& t : f->tensors())
      for (uint8_t b : f->tensor_data(t)) sum += b;
    for (const auto& [key, v] : f->metadata()) sum += static_cast<unsigned>(v.summary().size());
    const micromix::ModelSource m = micromix::io::gguf::load_model(f);
    for (const auto& name : m.tensors->names()) {
      const micromix::TensorView* v = m.tensors->find(name);
      if (!v) __builtin_trap();
      if (v->data.size() <= (1u << 16)) sum += static_cast<unsigned>(micromix::to_float(*v).size());
    }
    volatile unsigned sink = sum;
    (void)sink;
  } catch (const micromix::Error&) {
  }
  return 0;
}
