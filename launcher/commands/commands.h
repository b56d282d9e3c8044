// The lockstep subcommands that need the control plane (gRPC): launch, worker, coordinator, ctl,
// agent. Each file in commands/ registers its own with a static Registrar; main.cc dispatches by
// name. A command takes the arguments after its name, returns the exit status and throws
// lockstep::Error for a user error.
#pragma once

#include <map>
#include <string>

namespace lockstep::commands {

using CommandFn = int (*)(int argc, char** argv);

struct Command {
  std::string usage;  // one line, e.g. "lockstep ctl status|eval|... --coordinator HOST:PORT"
  CommandFn run = nullptr;
};

const std::map<std::string, Command>& all();

struct Registrar {
  Registrar(const std::string& name, const std::string& usage, CommandFn run);
};

}  // namespace lockstep::commands
