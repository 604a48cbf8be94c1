// libFuzzer target: arbitrary bytes as a safetensors file. Accepted files must yield views inside
// the input (every byte of every tensor is read, so AddressSanitizer sees any overrun) and convert
// to float; rejected ones must throw micromix::Error. See tests/fuzz/README.md.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "micromix/error.hpp"
#include "micromix/safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A heap copy of exactly `size` bytes: reads past the end hit ASan's redzone.
  std::vector<uint8_t> file(data, data + size);
  try {
    const micromix::SafetensorsHeader h = micromix::parse_safetensors(file, "fuzz");
    unsigned sum = 0;
    for (const auto& e : h.tensors)
      for (uint64_t i = e.begin; i < e.end; ++i) sum += file[h.data_offset + i];
    const auto src = micromix::SafetensorsSource::from_bytes(std::move(file), "fuzz");
    for (const auto& name : src->names()) {
      const micromix::TensorView* v = src->find(name);
      if (!v) __builtin_trap();
      if (v->data.size() <= (1u << 16)) sum += static_cast<unsigned>(micromix::to_float(*v).size());
    }
    volatile unsigned sink = sum;
    (void)sink;
  } catch (const micromix::Error&) {
  }
  return 0;
}
