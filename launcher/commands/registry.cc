// The table of control-plane subcommands, filled by each command file's Registrar.
#include "launcher/commands/commands.h"

namespace lockstep::commands {
namespace {

std::map<std::string, Command>& table() {
  static std::map<std::string, Command> t;
  return t;
}

}  // namespace

const std::map<std::string, Command>& all() { return table(); }

Registrar::Registrar(const std::string& name, const std::string& usage, CommandFn run) {
  table()[name] = Command{usage, run};
}

}  // namespace lockstep::commands
