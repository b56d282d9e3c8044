// Slurm allocation -> workers' placement: nodelist expansion through scontrol, srun's command line.
#include "launcher/commands/slurm_place.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "launcher/commands/host_place.h"
#include "runtime/check.h"

namespace lockstep::commands {
namespace {

// What `argv` prints on stdout and stderr together, and its wait status (-1: it could not start).
int run_capture(const std::vector<std::string>& argv, std::string& out) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return -1;
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    ::dup2(fds[1], STDERR_FILENO);
    ::execvp(args[0], args.data());
    std::_Exit(127);
  }
  ::close(fds[1]);
  if (pid < 0) {
    ::close(fds[0]);
    return -1;
  }
  char buf[4096];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return st;
}

// Slurm's own expansion of a compressed nodelist, one host a line.
std::vector<std::string> expand_nodelist(const SlurmAllocation& a) {
  std::string out;
  const int st = run_capture({"scontrol", "show", "hostnames", a.nodelist}, out);
  std::vector<std::string> hosts;
  size_t start = 0;
  for (size_t nl; (nl = out.find('\n', start)) != std::string::npos; start = nl + 1)
    if (nl > start) hosts.push_back(out.substr(start, nl - start));
  if (start < out.size()) hosts.push_back(out.substr(start));
  const bool ok = st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0 && !hosts.empty();
  LOCKSTEP_FAIL_IF(!ok) << "Slurm job " << a.job_id << ": `scontrol show hostnames` could not expand SLURM_JOB_NODELIST="
                        << a.nodelist << (st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 127 ? " (scontrol not found on PATH)" : "")
                        << (out.empty() ? "" : ": " + out.substr(0, out.find('\n')));
  return hosts;
}

}  // namespace

std::optional<SlurmPlace> slurm_place() {
  const std::optional<SlurmAllocation> a = detect_slurm_allocation();
  if (!a) return std::nullopt;
  SlurmPlace p;
  p.alloc = *a;
  p.hosts = expand_nodelist(*a);
  p.local_only = true;
  for (const std::string& h : p.hosts) p.local_only = p.local_only && locate_host(h).kind == HostPlace::Kind::kLocal;
  return p;
}

std::vector<std::string> srun_argv(int ranks, const std::vector<std::string>& srun_args,
                                   const std::vector<std::string>& worker_argv) {
  std::vector<std::string> v{"srun", "--ntasks=" + std::to_string(ranks), "--mpi=pmix", "--cpu-bind=none",
                             "--kill-on-bad-exit=0", "--export=ALL"};
  v.insert(v.end(), srun_args.begin(), srun_args.end());
  v.insert(v.end(), worker_argv.begin(), worker_argv.end());
  return v;
}

}  // namespace lockstep::commands
