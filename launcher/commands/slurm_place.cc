// Slurm allocation -> workers' placement: nodelist expansion through scontrol, srun's command line.
#include "launcher/commands/slurm_place.h"

#include <sys/wait.h>

#include <cstdio>
#include <memory>

#include "launcher/commands/host_place.h"
#include "runtime/check.h"

namespace lockstep::commands {
namespace {

// `scontrol show hostnames` expands SLURM_JOB_NODELIST (it reads the variable itself when given no
// argument, so no nodelist passes through a shell).
std::vector<std::string> expand_nodelist(const SlurmAllocation& a) {
  std::unique_ptr<FILE, int (*)(FILE*)> p(::popen("scontrol show hostnames 2>&1", "r"), &::pclose);
  LOCKSTEP_FAIL_IF(!p) << "Slurm job " << a.job_id << ": cannot run scontrol to expand SLURM_JOB_NODELIST="
                       << a.nodelist;
  std::string out;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p.get())) > 0;) out.append(buf, n);
  const int st = ::pclose(p.release());
  std::vector<std::string> hosts;
  size_t start = 0;
  for (size_t nl; (nl = out.find('\n', start)) != std::string::npos; start = nl + 1)
    if (nl > start) hosts.push_back(out.substr(start, nl - start));
  if (start < out.size()) hosts.push_back(out.substr(start));
  const bool ok = WIFEXITED(st) && WEXITSTATUS(st) == 0 && !hosts.empty();
  LOCKSTEP_FAIL_IF(!ok) << "Slurm job " << a.job_id << ": `scontrol show hostnames` could not expand SLURM_JOB_NODELIST="
                        << a.nodelist << (WIFEXITED(st) && WEXITSTATUS(st) == 127 ? " (scontrol not found on PATH)" : "")
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
