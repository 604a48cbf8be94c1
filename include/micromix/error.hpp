// Errors: library code throws micromix::Error with context; the CLI turns it into a message and
// a non-zero exit code.
#pragma once
#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace micromix {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <typename... Args>
[[noreturn]] inline void fail(fmt::format_string<Args...> f, Args&&... args) {
  throw Error(fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace micromix

// MM_CHECK(cond, "format {}", args...): throw micromix::Error when cond is false.
#define MM_CHECK(cond, ...)                     \
  do {                                          \
    if (!(cond)) ::micromix::fail(__VA_ARGS__); \
  } while (0)
