// Packing of element codes (FP4: 2 per byte, FP6: 4 per 3 bytes, FP8/INT8: 1 per byte).
#include <cstring>

#include "micromix/error.hpp"
#include "micromix/mx_pack.hpp"

namespace micromix::mx {

void pack_codes(ElemFormat f, std::span<const uint8_t> codes, std::span<uint8_t> packed) {
  const size_t n = codes.size();
  MM_CHECK(n % kBlock == 0, "pack_codes: {} codes is not a multiple of {}", n, kBlock);
  MM_CHECK(packed.size() >= packed_row_bytes(f, static_cast<int64_t>(n)),
           "pack_codes: output of {} bytes is too small for {} codes", packed.size(), n);
  switch (info(f).bits) {
    case 4:
      for (size_t j = 0; j < n / 2; ++j)
        packed[j] = static_cast<uint8_t>((codes[2 * j] & 0xF) | ((codes[2 * j + 1] & 0xF) << 4));
      break;
    case 6:
      for (size_t j = 0; j < n / 4; ++j) {
        uint32_t w = 0;
        for (int i = 0; i < 4; ++i) w |= static_cast<uint32_t>(codes[4 * j + i] & 0x3F) << (6 * i);
        packed[3 * j + 0] = static_cast<uint8_t>(w);
        packed[3 * j + 1] = static_cast<uint8_t>(w >> 8);
        packed[3 * j + 2] = static_cast<uint8_t>(w >> 16);
      }
      break;
    default:
      std::memcpy(packed.data(), codes.data(), n);
  }
}

void unpack_codes(ElemFormat f, std::span<const uint8_t> packed, std::span<uint8_t> codes) {
  const size_t n = codes.size();
  MM_CHECK(n % kBlock == 0, "unpack_codes: {} codes is not a multiple of {}", n, kBlock);
  MM_CHECK(packed.size() >= packed_row_bytes(f, static_cast<int64_t>(n)),
           "unpack_codes: input of {} bytes is too small for {} codes", packed.size(), n);
  switch (info(f).bits) {
    case 4:
      for (size_t j = 0; j < n / 2; ++j) {
        codes[2 * j] = packed[j] & 0xF;
        codes[2 * j + 1] = packed[j] >> 4;
      }
      break;
    case 6:
      for (size_t j = 0; j < n / 4; ++j) {
        const uint32_t w = packed[3 * j] | (packed[3 * j + 1] << 8) | (packed[3 * j + 2] << 16);
        for (int i = 0; i < 4; ++i) codes[4 * j + i] = (w >> (6 * i)) & 0x3F;
      }
      break;
    default:
      std::memcpy(codes.data(), packed.data(), n);
  }
}

}  // namespace micromix::mx
