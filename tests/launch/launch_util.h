// Helpers for tests of whole launched jobs: a small job file, the per-step losses of a run's
// metrics, the checkpoints it wrote, and the process tree of a launch (to prove nothing is left).
#pragma once

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <functional>

#include <gtest/gtest.h>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/control/process_util.h"

namespace lockstep::testing {

// A fresh directory per test (named after the test and this process), removed afterwards.
class TestDirectory : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("lockstep_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path(const std::string& rel) const { return (dir_ / rel).string(); }

  std::filesystem::path dir_;
};

inline std::string lockstep_exe() { return std::string(LOCKSTEP_BINARY_DIR) + "/launcher/lockstep"; }

// A test of whole launches in its own directory: `lockstep launch -n N JOB --run-dir RUN ARGS...`
// in the background (start) or to its end under a time limit (run: the status; output_ the output).
class LaunchTest : public TestDirectory {
 protected:
  std::unique_ptr<ChildProcess> start(const std::string& job, const std::string& run,
                                      std::vector<std::string> args = {}, const std::string& n = "2") {
    std::vector<std::string> argv{lockstep_exe(), "launch", "-n", n, job, "--run-dir", run};
    argv.insert(argv.end(), args.begin(), args.end());
    return std::make_unique<ChildProcess>(argv, run + ".log");
  }
  int run(const std::string& job, const std::string& run, std::vector<std::string> args = {}, double limit_s = 120) {
    auto p = start(job, run, std::move(args));
    const int st = p->wait(limit_s);
    output_ = p->output();
    return st;
  }

  std::string output_;
};

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// fmnist-mlp on the real data set (seconds per epoch on 2 ranks), SyncBN, checkpoint every epoch.
inline std::string write_mlp_job(const std::string& dir, int epochs, const std::string& extra = "") {
  const std::string path = dir + "/job.textproto";
  std::ofstream(path) << "name: \"launch-test\"\n"
                      << "model { reference: \"fmnist-mlp\" }\n"
                      << "data { dir: \"" << LOCKSTEP_DATA_DIR << "\" }\n"
                      << "optimizer { lr: 0.05 sgd { momentum: 0.9 } }\n"
                      << "seed: 7\nepochs: " << epochs << "\nbatch_size: 128\n"
                      << "distributed { sync_batchnorm: true collective_timeout_s: 30 }\n"
                      << extra;
  return path;
}

// step -> loss as printed (17 significant digits); a step logged twice (a resumed run redoes the
// steps after its checkpoint) keeps its newest line.
inline std::map<long, std::string> step_losses(const std::string& metrics) {
  std::map<long, std::string> out;
  std::istringstream in(read_text(metrics));
  const std::regex re("\"kind\":\"step\",\"epoch\":[0-9]+,\"step\":([0-9]+),\"loss\":([^,]+),");
  std::smatch m;
  for (std::string line; std::getline(in, line);)
    if (std::regex_search(line, m, re)) out[std::stol(m[1])] = m[2];
  return out;
}

// epoch -> (train_loss, test_accuracy) as printed; the newest line of each epoch.
inline std::map<long, std::string> epoch_figures(const std::string& metrics) {
  std::map<long, std::string> out;
  std::istringstream in(read_text(metrics));
  const std::regex re("\"kind\":\"epoch\",\"epoch\":([0-9]+),\"train_loss\":([^,]+),.*\"test_accuracy\":([^,]+),");
  std::smatch m;
  for (std::string line; std::getline(in, line);)
    if (std::regex_search(line, m, re)) out[std::stol(m[1])] = m[2].str() + " " + m[3].str();
  return out;
}

inline std::string checkpoint_dir(const std::string& run_dir, long step) {
  char name[32];
  std::snprintf(name, sizeof name, "ckpt-%09ld", step);
  return run_dir + "/checkpoints/" + name;
}

inline bool wait_until(const std::function<bool()>& cond, double timeout_s) {
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(int64_t(timeout_s * 1000));
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return cond();
}

// A process that exists and is not a zombie.
inline bool process_alive(pid_t pid) {
  if (::kill(pid, 0) != 0 && errno == ESRCH) return false;
  const std::string stat = read_text("/proc/" + std::to_string(pid) + "/stat");
  const size_t close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
}

// pid and all its descendants now alive (from /proc/*/stat parent links).
inline std::set<pid_t> process_tree(pid_t root) {
  std::map<pid_t, std::vector<pid_t>> children;
  if (DIR* d = ::opendir("/proc")) {
    while (dirent* e = ::readdir(d)) {
      const pid_t pid = static_cast<pid_t>(std::atoi(e->d_name));
      if (pid <= 0) continue;
      const std::string stat = read_text(std::string("/proc/") + e->d_name + "/stat");
      const size_t close = stat.rfind(')');
      if (close == std::string::npos) continue;
      std::istringstream rest(stat.substr(close + 2));
      char state;
      pid_t parent;
      rest >> state >> parent;
      if (state != 'Z') children[parent].push_back(pid);
    }
    ::closedir(d);
  }
  std::set<pid_t> out{root};
  std::vector<pid_t> todo{root};
  while (!todo.empty()) {
    const pid_t p = todo.back();
    todo.pop_back();
    for (pid_t c : children[p])
      if (out.insert(c).second) todo.push_back(c);
  }
  return out;
}

// Worker pids of a launch: the tree's processes whose command line holds " worker ".
inline std::vector<pid_t> worker_pids(const std::set<pid_t>& tree) {
  std::vector<pid_t> out;
  for (pid_t p : tree) {
    std::string cmd = read_text("/proc/" + std::to_string(p) + "/cmdline");
    for (char& c : cmd)
      if (c == '\0') c = ' ';
    if (cmd.find("lockstep worker ") != std::string::npos) out.push_back(p);
  }
  return out;
}

// The MPI rank of a worker process (OMPI_COMM_WORLD_RANK in its environment), -1 if unknown.
inline int rank_of(pid_t pid) {
  const std::string env = read_text("/proc/" + std::to_string(pid) + "/environ");
  const std::string key = std::string("OMPI_COMM_WORLD_RANK=");
  for (size_t at = 0; at < env.size();) {
    const size_t end = env.find('\0', at);
    const std::string var = env.substr(at, end - at);
    if (var.rfind(key, 0) == 0) return std::atoi(var.c_str() + key.size());
    if (end == std::string::npos) break;
    at = end + 1;
  }
  return -1;
}

}  // namespace lockstep::testing
