// detect_launch() and default_backend() against the environments of mpirun, a PMIx launcher and
// srun, and malformed values; single-process (the launcher variables are set by each test and put
// back as they were when it ends).
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <optional>
#include <string>

#include "comm/bootstrap.h"
#include "runtime/check.h"

namespace lockstep {
namespace {

// Clears every launcher variable for the test's lifetime, then restores them.
class LaunchEnv {
 public:
  LaunchEnv() {
    for (const char* name : kNames) {
      if (const char* v = std::getenv(name)) saved_[name] = v;
      unsetenv(name);
    }
  }
  ~LaunchEnv() {
    for (const char* name : kNames) {
      auto it = saved_.find(name);
      if (it == saved_.end())
        unsetenv(name);
      else
        setenv(name, it->second.c_str(), 1);
    }
  }
  LaunchEnv& set(const char* name, const char* value) {
    setenv(name, value, 1);
    return *this;
  }

 private:
  static constexpr const char* kNames[] = {"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE",
                                           "OMPI_COMM_WORLD_LOCAL_RANK", "PMIX_RANK", "PMI_SIZE",
                                           "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID",
                                           "SLURM_JOB_ID", "SLURM_JOB_NODELIST", "SLURM_TASKS_PER_NODE"};
  std::map<std::string, std::string> saved_;
};

// The Error text of detect_launch(), or nullopt when it succeeds.
std::optional<std::string> launch_error() {
  try {
    detect_launch();
    return std::nullopt;
  } catch (const Error& e) {
    return std::string(e.what());
  }
}

TEST(Bootstrap, NoLauncherIsOneProcess) {
  LaunchEnv env;
  const LaunchInfo info = detect_launch();
  EXPECT_EQ(info.rank, 0);
  EXPECT_EQ(info.size, 1);
  EXPECT_EQ(info.local_rank, 0);
  EXPECT_EQ(info.launched_by, "none");
  EXPECT_EQ(default_backend(), "self");
}

TEST(Bootstrap, Mpirun) {
  LaunchEnv env;
  env.set("OMPI_COMM_WORLD_RANK", "5").set("OMPI_COMM_WORLD_SIZE", "8").set("OMPI_COMM_WORLD_LOCAL_RANK", "1");
  env.set("SLURM_PROCID", "0").set("SLURM_NTASKS", "1");  // mpirun inside a Slurm allocation
  const LaunchInfo info = detect_launch();
  EXPECT_EQ(info.rank, 5);
  EXPECT_EQ(info.size, 8);
  EXPECT_EQ(info.local_rank, 1);
  EXPECT_EQ(info.launched_by, "mpirun");
  EXPECT_EQ(default_backend(), "mpi");
}

TEST(Bootstrap, MpirunOfOneRankIsStillMpi) {
  LaunchEnv env;
  env.set("OMPI_COMM_WORLD_RANK", "0").set("OMPI_COMM_WORLD_SIZE", "1");
  EXPECT_EQ(detect_launch().launched_by, "mpirun");
  EXPECT_EQ(default_backend(), "mpi");
}

TEST(Bootstrap, Pmix) {
  LaunchEnv env;
  env.set("PMIX_RANK", "2").set("PMI_SIZE", "3");
  const LaunchInfo info = detect_launch();
  EXPECT_EQ(info.rank, 2);
  EXPECT_EQ(info.size, 3);
  EXPECT_EQ(info.launched_by, "mpirun");
}

TEST(Bootstrap, SrunWithPmixTakesTheSizeFromSlurm) {
  LaunchEnv env;
  env.set("PMIX_RANK", "3").set("SLURM_PROCID", "3").set("SLURM_NTASKS", "4").set("SLURM_LOCALID", "1");
  const LaunchInfo info = detect_launch();
  EXPECT_EQ(info.rank, 3);
  EXPECT_EQ(info.size, 4);
  EXPECT_EQ(info.local_rank, 1);
  EXPECT_EQ(info.launched_by, "srun");
  EXPECT_TRUE(info.pmix);
}

TEST(Bootstrap, SrunWithoutMpi) {
  LaunchEnv env;
  env.set("SLURM_PROCID", "6").set("SLURM_NTASKS", "16").set("SLURM_LOCALID", "2");
  const LaunchInfo info = detect_launch();
  EXPECT_EQ(info.rank, 6);
  EXPECT_EQ(info.size, 16);
  EXPECT_EQ(info.local_rank, 2);
  EXPECT_EQ(info.launched_by, "srun");
  EXPECT_FALSE(info.pmix);  // Open MPI cannot start from this
  EXPECT_EQ(default_backend(), "mpi");
  try {
    check_mpi_can_start(info);
    ADD_FAILURE() << "srun without PMIx accepted";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("task 6 of 16 without PMIx"), std::string::npos) << what;
    EXPECT_NE(what.find("srun --mpi=pmix"), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
  env.set("SLURM_NTASKS", "1").set("SLURM_PROCID", "0");  // one task: a world of one is right
  EXPECT_NO_THROW(check_mpi_can_start(detect_launch()));
  env.set("PMIX_RANK", "0");  // srun --mpi=pmix
  EXPECT_NO_THROW(check_mpi_can_start(detect_launch()));
}

// The Error text of detect_slurm_allocation(), or nullopt when it succeeds.
std::optional<std::string> allocation_error() {
  try {
    detect_slurm_allocation();
    return std::nullopt;
  } catch (const Error& e) {
    return std::string(e.what());
  }
}

TEST(Bootstrap, NoSlurmAllocationOutsideOne) {
  LaunchEnv env;
  EXPECT_FALSE(detect_slurm_allocation());
}

TEST(Bootstrap, SlurmAllocationTasks) {
  LaunchEnv env;
  env.set("SLURM_JOB_ID", "42").set("SLURM_JOB_NODELIST", "node[01-03],gpu7").set("SLURM_TASKS_PER_NODE", "2(x3),1");
  auto a = detect_slurm_allocation();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->job_id, "42");
  EXPECT_EQ(a->nodelist, "node[01-03],gpu7");
  EXPECT_EQ(a->tasks, 2 * 3 + 1);
  env.set("SLURM_NTASKS", "5");  // sbatch -n 5: the tasks asked for win over the nodes' room
  a = detect_slurm_allocation();
  ASSERT_TRUE(a);
  EXPECT_EQ(a->tasks, 5);
}

TEST(Bootstrap, MalformedSlurmAllocationNamesTheVariable) {
  for (const char* bad : {"", "2(x3", "2(3)", "2,", "x", "2(x3)1", "0"}) {
    LaunchEnv env;
    env.set("SLURM_JOB_ID", "42").set("SLURM_JOB_NODELIST", "n1").set("SLURM_TASKS_PER_NODE", bad);
    const auto e = allocation_error();
    ASSERT_TRUE(e) << "accepted \"" << bad << "\"";
    EXPECT_NE(e->find("SLURM_TASKS_PER_NODE=\"" + std::string(bad) + "\""), std::string::npos) << *e;
  }
  LaunchEnv env;
  env.set("SLURM_JOB_ID", "42").set("SLURM_TASKS_PER_NODE", "1");
  const auto e = allocation_error();
  ASSERT_TRUE(e);
  EXPECT_NE(e->find("SLURM_JOB_NODELIST is not set, but SLURM_JOB_ID=42 is"), std::string::npos) << *e;
}

TEST(Bootstrap, MalformedValueNamesTheVariableAndValue) {
  for (const char* bad : {"", "2x", " 2", "+2", "-1", "0x10", "99999999999"}) {
    LaunchEnv env;
    env.set("OMPI_COMM_WORLD_RANK", bad).set("OMPI_COMM_WORLD_SIZE", "4");
    const auto e = launch_error();
    ASSERT_TRUE(e) << "accepted \"" << bad << "\"";
    EXPECT_NE(e->find("OMPI_COMM_WORLD_RANK=\"" + std::string(bad) + "\""), std::string::npos) << *e;
    EXPECT_EQ(e->find('\n'), std::string::npos) << *e;
  }
  LaunchEnv env;
  env.set("SLURM_PROCID", "0").set("SLURM_NTASKS", "0");  // a world of no processes
  const auto e = launch_error();
  ASSERT_TRUE(e);
  EXPECT_NE(e->find("SLURM_NTASKS=\"0\""), std::string::npos) << *e;
}

TEST(Bootstrap, RankOutsideTheWorldIsAnError) {
  LaunchEnv env;
  env.set("OMPI_COMM_WORLD_RANK", "4").set("OMPI_COMM_WORLD_SIZE", "4");
  const auto e = launch_error();
  ASSERT_TRUE(e);
  EXPECT_NE(e->find("OMPI_COMM_WORLD_RANK=4 is not below OMPI_COMM_WORLD_SIZE=4"), std::string::npos) << *e;
}

TEST(Bootstrap, HalfAnEnvironmentIsAnError) {
  LaunchEnv env;
  env.set("OMPI_COMM_WORLD_SIZE", "2");
  const auto e = launch_error();
  ASSERT_TRUE(e);
  EXPECT_NE(e->find("OMPI_COMM_WORLD_RANK is not set"), std::string::npos) << *e;
  LaunchEnv env2;
  env2.set("PMIX_RANK", "0");
  const auto e2 = launch_error();
  ASSERT_TRUE(e2);
  EXPECT_NE(e2->find("PMI_SIZE is not set"), std::string::npos) << *e2;
}

}  // namespace
}  // namespace lockstep
