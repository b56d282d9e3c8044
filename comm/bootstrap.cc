// Bootstrap: rank, size and local rank from the launcher's environment, strictly parsed.
#include "comm/bootstrap.h"

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <optional>
#include <string>

#include "runtime/check.h"

namespace lockstep {
namespace {

// The variable as an int >= min, nullopt when unset; anything else ("", "2x", " 3", overflow) is an Error.
std::optional<int> env_int(const char* name, int min) {
  const char* v = std::getenv(name);
  if (v == nullptr) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const long x = std::strtol(v, &end, 10);
  const bool digits = *v >= '0' && *v <= '9';  // strtol would skip spaces and take a sign
  LOCKSTEP_FAIL_IF(!digits || *end != '\0' || errno == ERANGE || x > INT_MAX || x < min)
      << "environment variable " << name << "=\"" << v << "\" set by the launcher is not an integer >= "
      << min;
  return static_cast<int>(x);
}

// A variable the launcher must have set alongside another.
int required(const char* name, int min, const char* because) {
  const std::optional<int> v = env_int(name, min);
  LOCKSTEP_FAIL_IF(!v) << "environment variable " << name << " is not set, but " << because
                       << " is: the launcher's environment is incomplete";
  return *v;
}

}  // namespace

LaunchInfo detect_launch() {
  LaunchInfo info;
  const char* rank_var = nullptr;
  const char* size_var = nullptr;
  if (std::getenv("OMPI_COMM_WORLD_RANK") || std::getenv("OMPI_COMM_WORLD_SIZE")) {
    rank_var = "OMPI_COMM_WORLD_RANK";
    size_var = "OMPI_COMM_WORLD_SIZE";
    info.launched_by = "mpirun";
    info.rank = required(rank_var, 0, size_var);
    info.size = required(size_var, 1, rank_var);
    info.local_rank = env_int("OMPI_COMM_WORLD_LOCAL_RANK", 0).value_or(0);
  } else if (std::getenv("PMIX_RANK")) {
    const bool slurm = std::getenv("SLURM_PROCID") != nullptr;
    rank_var = "PMIX_RANK";
    size_var = std::getenv("PMI_SIZE") || !slurm ? "PMI_SIZE" : "SLURM_NTASKS";
    info.launched_by = slurm ? "srun" : "mpirun";
    info.pmix = true;
    info.rank = *env_int(rank_var, 0);
    info.size = required(size_var, 1, rank_var);
    info.local_rank = env_int("SLURM_LOCALID", 0).value_or(0);
  } else if (std::getenv("SLURM_PROCID")) {
    rank_var = "SLURM_PROCID";
    size_var = "SLURM_NTASKS";
    info.launched_by = "srun";
    info.rank = *env_int(rank_var, 0);
    info.size = required(size_var, 1, rank_var);
    info.local_rank = env_int("SLURM_LOCALID", 0).value_or(0);
  } else {
    return info;
  }
  LOCKSTEP_FAIL_IF(info.rank >= info.size)
      << "environment variable " << rank_var << "=" << info.rank << " is not below " << size_var << "="
      << info.size;
  return info;
}

void check_mpi_can_start(const LaunchInfo& info) {
  LOCKSTEP_FAIL_IF(info.launched_by == "srun" && !info.pmix && info.size > 1)
      << "started by srun as task " << info.rank << " of " << info.size
      << " without PMIx (SLURM_PROCID is set, PMIX_RANK is not): Open MPI can start only under `srun "
         "--mpi=pmix` (or MpiDefault=pmix in slurm.conf)";
}

std::string default_backend() { return detect_launch().launched_by == "none" ? "self" : "mpi"; }

namespace {

// SLURM_TASKS_PER_NODE: comma-separated counts, each optionally "(xR)" for R nodes alike.
int tasks_per_node_sum(const std::string& v) {
  auto bad = [&v]() {
    LOCKSTEP_FAIL_IF(true) << "environment variable SLURM_TASKS_PER_NODE=\"" << v
                           << "\" set by Slurm is not a list like \"2(x3),1\"";
  };
  long long total = 0;
  size_t i = 0;
  auto number = [&]() -> long long {
    if (i >= v.size() || v[i] < '0' || v[i] > '9') bad();
    long long x = 0;
    while (i < v.size() && v[i] >= '0' && v[i] <= '9') {
      x = x * 10 + (v[i++] - '0');
      if (x > INT_MAX) bad();
    }
    return x;
  };
  for (;;) {
    const long long count = number();
    long long repeat = 1;
    if (i < v.size() && v[i] == '(') {
      if (v.compare(i, 2, "(x") != 0) bad();
      i += 2;
      repeat = number();
      if (i >= v.size() || v[i] != ')') bad();
      ++i;
    }
    total += count * repeat;
    if (total > INT_MAX) bad();
    if (i == v.size()) break;
    if (v[i] != ',') bad();
    ++i;
  }
  return static_cast<int>(total);
}

}  // namespace

std::optional<SlurmAllocation> detect_slurm_allocation() {
  const char* job = std::getenv("SLURM_JOB_ID");
  if (job == nullptr) return std::nullopt;
  SlurmAllocation a;
  a.job_id = job;
  const char* nodes = std::getenv("SLURM_JOB_NODELIST");
  LOCKSTEP_FAIL_IF(nodes == nullptr || *nodes == '\0')
      << "environment variable SLURM_JOB_NODELIST is not set, but SLURM_JOB_ID=" << a.job_id
      << " is: the Slurm allocation's environment is incomplete";
  a.nodelist = nodes;
  if (const std::optional<int> n = env_int("SLURM_NTASKS", 1)) {
    a.tasks = *n;
  } else {
    const char* per_node = std::getenv("SLURM_TASKS_PER_NODE");
    LOCKSTEP_FAIL_IF(per_node == nullptr)
        << "environment variable SLURM_TASKS_PER_NODE is not set, nor SLURM_NTASKS, but SLURM_JOB_ID=" << a.job_id
        << " is: the Slurm allocation's environment is incomplete";
    a.tasks = tasks_per_node_sum(per_node);
    LOCKSTEP_FAIL_IF(a.tasks < 1) << "environment variable SLURM_TASKS_PER_NODE=\"" << per_node
                                  << "\" set by Slurm allows no task";
  }
  return a;
}

}  // namespace lockstep
