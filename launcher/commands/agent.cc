// `lockstep agent`: mpirun's remote-start agent (--mca plm_rsh_agent "lockstep agent"), a stand-in
// for ssh that also reaches hosts played by network namespaces on this machine. OpenMPI 4.1's rsh
// launcher calls it exactly as it would call ssh, the remote command as words to be joined with
// spaces and run by the remote shell (some words carry their own quotes):
//   lockstep agent 10.231.0.2  orted -mca ess "env" -mca ess_base_jobid "1590755328" ... --tree-spawn ...
// The agent runs `sh -c "<joined words>"` inside HOST's network namespace (setns), or here when HOST
// is this namespace, or else becomes `ssh [options] HOST words...`. Every path ends in exec, so
// mpirun's child is the command itself, with no agent process left in between.
// Its words follow ssh(1)'s grammar (option clusters such as "-xp22", values glued or apart), not
// lockstep's, so it keeps this small parser of its own instead of launcher/cli.h.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "launcher/commands/commands.h"
#include "launcher/commands/host_place.h"
#include "runtime/check.h"

namespace lockstep::commands {
namespace {

constexpr const char* kUsage =
    "lockstep agent [ssh options] HOST COMMAND...   (mpirun --mca plm_rsh_agent \"lockstep agent\": runs "
    "COMMAND in HOST's network namespace, here, or over ssh)";

// ssh's options that take a value, as in ssh(1): "-p 22" or "-p22".
bool takes_value(char c) { return std::strchr("BbcDEeFIiJLlmOoPpQRSWw", c) != nullptr; }

[[noreturn]] void exec_or_fail(const std::vector<std::string>& argv, const std::string& host) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::fflush(nullptr);
  execvp(args[0], args.data());
  const int err = errno;
  LOCKSTEP_FAIL_IF(true) << "agent: host " << host << ": cannot run " << argv[0] << ": " << std::strerror(err);
  std::abort();  // not reached: the line above throws
}

int agent_main(int argc, char** argv) {
  std::vector<std::string> ssh_options;
  int i = 0;
  for (; i < argc && argv[i][0] == '-' && argv[i][1] != '\0'; ++i) {
    const std::string opt = argv[i];
    ssh_options.push_back(opt);
    if (opt == "--") { ++i; break; }
    // In a cluster like "-xp22" the first option taking a value takes the rest of the word, or
    // the next word when nothing is left.
    for (size_t k = 1; k < opt.size(); ++k)
      if (takes_value(opt[k])) {
        if (k + 1 == opt.size()) {
          LOCKSTEP_FAIL_IF(i + 1 >= argc) << "agent: option " << opt << " needs a value; usage: " << kUsage;
          ssh_options.push_back(argv[++i]);
        }
        break;
      }
  }
  LOCKSTEP_FAIL_IF(i >= argc) << "agent: no host given; usage: " << kUsage;
  const std::string host = argv[i++];
  std::vector<std::string> words(argv + i, argv + argc);

  const HostPlace place = locate_host(host);
  if (place.kind == HostPlace::Kind::kRemote) {
    std::vector<std::string> ssh{"ssh"};
    ssh.insert(ssh.end(), ssh_options.begin(), ssh_options.end());
    ssh.push_back(host);
    ssh.insert(ssh.end(), words.begin(), words.end());
    exec_or_fail(ssh, host);
  }
  LOCKSTEP_FAIL_IF(words.empty()) << "agent: no command to run on host " << host
                                  << " (an interactive shell is only offered over ssh)";
  std::string command;
  for (const auto& w : words) command += (command.empty() ? "" : " ") + w;
  if (place.kind == HostPlace::Kind::kNamespace) enter_netns(place.netns, host);
  exec_or_fail({"sh", "-c", command}, host);
}

const Registrar reg("agent", kUsage, &agent_main);

}  // namespace
}  // namespace lockstep::commands
