#include "progress.hpp"

#include <unistd.h>

#include <cstdio>

#include <fmt/format.h>

namespace micromix::cli {

Progress::Progress(std::string label) : label_(std::move(label)), tty_(isatty(STDERR_FILENO) != 0) {}

Progress::~Progress() {
  if (open_) std::fputc('\n', stderr);
}

void Progress::update(int64_t done, int64_t total, const std::string& extra) {
  const std::string line = fmt::format("{} {}/{}{}{}", label_, done, total, extra.empty() ? "" : "  ", extra);
  if (tty_) {
    fmt::print(stderr, "\r{}\033[K", line);  // \033[K clears what a longer previous line left
    open_ = true;
  } else {
    const int decile = total > 0 ? static_cast<int>(10 * done / total) : 10;
    if (decile == last_decile_ && done != total) return;
    last_decile_ = decile;
    fmt::print(stderr, "{}\n", line);
  }
  std::fflush(stderr);
}

void Progress::finish(const std::string& suffix) {
  if (open_) {
    fmt::print(stderr, "{}\n", suffix);
    open_ = false;
  } else if (!suffix.empty()) {
    fmt::print(stderr, "{} done{}\n", label_.substr(0, label_.rfind(' ')), suffix);  // "what: done"
  }
  std::fflush(stderr);
}

}  // namespace micromix::cli
