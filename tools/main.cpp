// micromix: the command-line front end. Subcommands live in tools/cmd_*.cpp.
#include <cstdio>
#include <exception>

#include <fmt/format.h>

#include "command.hpp"
#include "micromix/error.hpp"

namespace micromix::cli {
std::vector<CommandSetup>& commands() {
  static std::vector<CommandSetup> list;
  return list;
}
}  // namespace micromix::cli

int main(int argc, char** argv) {
  CLI::App app{"micromix: MicroMix mixed MXFP4/MXFP6/MXFP8 quantization of LLMs"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "micromix 0.1.0");
  for (auto& setup : micromix::cli::commands()) setup(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const micromix::Error& e) {
    fmt::print(stderr, "micromix: error: {}\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "micromix: internal error: {}\n", e.what());
    return 2;
  }
  return 0;
}
