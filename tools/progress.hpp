// Progress lines on stderr for long CLI work. On a terminal one line is rewritten in place; on a
// pipe or file (logs, CI) a line is printed at the first step, every 10% and at the end, so logs
// stay readable instead of holding thousands of carriage returns.
#pragma once
#include <cstdint>
#include <string>

namespace micromix::cli {

class Progress {
 public:
  explicit Progress(std::string label);
  ~Progress();  // ends the line if update() printed one
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;
  // "label done/total  extra"
  void update(int64_t done, int64_t total, const std::string& extra = {});
  // Ends the line, with `suffix` appended (e.g. the elapsed time).
  void finish(const std::string& suffix = {});

 private:
  std::string label_;
  bool tty_, open_ = false;
  int last_decile_ = -1;
};

}  // namespace micromix::cli
