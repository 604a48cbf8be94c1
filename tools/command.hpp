// Subcommand registry of the `micromix` CLI: each tools/cmd_*.cpp registers itself with
// MICROMIX_COMMAND, so adding a command is adding a file.
#pragma once
#include <functional>
#include <vector>

#include <CLI/CLI.hpp>

namespace micromix::cli {

// Adds its subcommand to the app; the subcommand's callback does the work and may throw
// micromix::Error, which main() turns into a one-line message and exit code 1.
using CommandSetup = std::function<void(CLI::App& app)>;

std::vector<CommandSetup>& commands();

struct RegisterCommand {
  explicit RegisterCommand(CommandSetup s) { commands().push_back(std::move(s)); }
};

}  // namespace micromix::cli

#define MICROMIX_COMMAND_CAT2(a, b) a##b
#define MICROMIX_COMMAND_CAT(a, b) MICROMIX_COMMAND_CAT2(a, b)
#define MICROMIX_COMMAND(fn) \
  static ::micromix::cli::RegisterCommand MICROMIX_COMMAND_CAT(micromix_command_, __LINE__)(fn)
