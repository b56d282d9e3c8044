// mpirun under a Boost.Asio watch: signals, child exit, output, heartbeats, local worker processes.
#include "launcher/launch/supervisor.h"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <utility>  // before Boost.Asio 1.74, which uses std::exchange without it
#include <boost/asio.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <regex>

#include "runtime/check.h"

namespace lockstep {
namespace {

using Clock = std::chrono::steady_clock;

std::string this_host() {
  char h[256] = {};
  gethostname(h, sizeof h - 1);
  return h;
}

bool alive(pid_t pid) { return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM); }

// The parent pid of `pid` from /proc, or -1.
pid_t parent_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = stat.rfind(')');  // the command name may hold spaces and parentheses
  if (close == std::string::npos) return -1;
  char state = 0;
  int ppid = -1;
  if (std::sscanf(stat.c_str() + close + 1, " %c %d", &state, &ppid) != 2) return -1;
  return ppid;
}

bool descends_from(pid_t pid, pid_t ancestor) {
  for (int depth = 0; pid > 1 && depth < 64; ++depth) {
    pid = parent_of(pid);
    if (pid == ancestor) return true;
  }
  return false;
}

// In a fresh network namespace: its loopback interface up (it starts down). Syscalls only, for a
// forked child.
void bring_up_loopback() {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, "lo", 3);
  if (::ioctl(fd, SIOCGIFFLAGS, &ifr) == 0) {
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
    ::ioctl(fd, SIOCSIFFLAGS, &ifr);
  }
  ::close(fd);
}

// Starts argv in its own process group (and, private_network, its own network namespace), its
// stdout and stderr on out_fd (if given).
pid_t spawn(const std::vector<std::string>& argv, int out_fd, bool private_network) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = ::fork();
  LOCKSTEP_FAIL_IF(pid < 0) << "cannot start " << argv[0] << ": " << std::strerror(errno);
  if (pid == 0) {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);  // the launcher killed: the job goes with it
    if (private_network && ::unshare(CLONE_NEWNET) == 0) bring_up_loopback();
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    ::signal(SIGUSR1, SIG_DFL);
    if (out_fd >= 0) {
      ::dup2(out_fd, STDOUT_FILENO);
      ::dup2(out_fd, STDERR_FILENO);
    }
    ::execvp(args[0], args.data());
    std::fprintf(stderr, "lockstep launch: cannot run %s: %s\n", args[0], std::strerror(errno));
    std::_Exit(127);
  }
  ::setpgid(pid, pid);
  return pid;
}

// mpirun's notice of a rank that died on a signal (Open MPI 4), or srun's of a task that died or
// failed, as one line of ours.
// Open MPI 4.1 may print PID 0; the pid the rank registered with is used then.
std::string signal_notice(const std::string& text, const std::map<int, int64_t>& pids) {
  static const std::regex re(
      R"(process rank (\d+) with PID (\d+) on node (\S+) exited on signal (\d+) \(([^)]*)\))");
  // srun's (Slurm 22.05): "srun: error: HOST: task 1: Killed", "... tasks 0-1: Exited with exit code 2".
  static const std::regex srun_re(R"(srun: error: (\S+): (task|tasks) ([0-9,-]+): ([^\n]+))");
  std::smatch m;
  if (std::regex_search(text, m, srun_re))
    return (m[2] == "task" ? "rank " : "ranks ") + m[3].str() + " (on " + m[1].str() + "): " + m[4].str();
  if (!std::regex_search(text, m, re)) return "";
  std::string pid = m[2].str();
  if (pid == "0")
    if (auto it = pids.find(std::stoi(m[1].str())); it != pids.end()) pid = std::to_string(it->second);
  return "rank " + m[1].str() + " (pid " + pid + " on " + m[3].str() + ") was killed by signal " +
         m[4].str() + " (" + m[5].str() + ")";
}

}  // namespace

Supervisor::Supervisor(CoordinatorServer& server, SupervisorOptions o,
                       std::function<void(const proto::JobStatus&)> on_tick)
    : server_(server), o_(o), on_tick_(std::move(on_tick)) {}

AttemptResult Supervisor::run(const std::vector<std::string>& argv) {
  boost::asio::io_context io;
  boost::asio::signal_set stops(io, SIGINT, SIGTERM, SIGUSR1);  // SIGUSR1: Slurm's preemption warning
  boost::asio::signal_set children(io, SIGCHLD);
  boost::asio::steady_timer timer(io);
  AttemptResult r;

  // mpirun's output: a pipe we read (its read end close-on-exec, so no child inherits it).
  int fds[2] = {-1, -1};
  const bool capture = !o_.log_path.empty();
  if (capture) {
    LOCKSTEP_FAIL_IF(::pipe2(fds, O_CLOEXEC) != 0) << "cannot create a pipe: " << std::strerror(errno);
  }
  std::ofstream log;
  if (capture) log.open(o_.log_path, std::ios::app);
  const pid_t pid = spawn(argv, capture ? fds[1] : -1, o_.private_network);
  if (capture) ::close(fds[1]);
  boost::asio::posix::stream_descriptor output(io);
  if (capture) output.assign(fds[0]);
  boost::asio::streambuf pending;
  std::string mpirun_text;  // what mpirun itself said (not our lines), for its signal notice

  const std::string host = this_host();
  const auto started = Clock::now();
  bool exited = false, output_done = !capture;
  Clock::time_point first_stop{}, exited_at{}, kill_at = Clock::time_point::max();
  std::map<int, int64_t> local_pids;  // rank -> pid of this attempt's ranks on this host
  std::map<int64_t, bool> verified;   // pid -> started by this attempt's mpirun
  std::map<int, Clock::time_point> registered_at;  // rank -> when this supervisor first saw it

  // A failure: mpirun gets the grace period to end the job itself (signalling it while it aborts
  // crashes it), then its process group is killed.
  auto fail = [&](const std::string& why) {
    if (r.failure.empty()) r.failure = why;
    if (kill_at == Clock::time_point::max())
      kill_at = Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(o_.mpirun_grace_s * 1000));
  };
  auto finish_if_done = [&] {
    if (exited && output_done) io.stop();
  };
  std::function<void()> wait_stop = [&] {
    stops.async_wait([&](const boost::system::error_code& ec, int sig) {
      if (ec) return;
      const auto now = Clock::now();
      if (!r.stop_requested) {
        r.stop_requested = true;
        first_stop = now;
        std::fprintf(stderr, "\nlockstep launch: %s: checkpointing at the next step and stopping (again to kill)\n",
                     strsignal(sig));
        try {
          server_.request(proto::ControlRequest::STOP);
        } catch (const std::exception& e) {
          fail(std::string("cannot stop the job cleanly: ") + e.what());
        }
        // The ranks on this host hear it at once (their next step boundary stops the job); the
        // directive reaches the others with rank 0's next heartbeat reply. Either way the delay
        // is bounded in time: one step, or one heartbeat interval and one step.
        for (const auto& [rank, wpid] : local_pids)
          if (alive(static_cast<pid_t>(wpid))) ::kill(static_cast<pid_t>(wpid), SIGTERM);
      } else if (std::chrono::duration<double>(now - first_stop).count() >= o_.repeat_signal_s && !r.killed) {
        r.killed = true;
        fail(std::string("killed on a second ") + strsignal(sig));
        kill_at = now;
      }
      wait_stop();
    });
  };
  std::function<void()> wait_child = [&] {
    children.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) return;
      int st = 0;
      if (::waitpid(pid, &st, WNOHANG) == pid) {
        exited = true;
        exited_at = Clock::now();
        r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        finish_if_done();
        if (exited && output_done) return;
      }
      wait_child();
    });
  };
  std::function<void()> read_output = [&] {
    boost::asio::async_read_until(output, pending, '\n', [&](const boost::system::error_code& ec, size_t n) {
      std::string line;
      if (!ec) {
        line.assign(boost::asio::buffers_begin(pending.data()), boost::asio::buffers_begin(pending.data()) + n);
        pending.consume(n);
      } else {  // EOF: what is left, without its newline
        line.assign(boost::asio::buffers_begin(pending.data()), boost::asio::buffers_end(pending.data()));
        pending.consume(pending.size());
      }
      if (!line.empty()) {
        log << line << (line.back() == '\n' ? "" : "\n");
        if (line.rfind("lockstep", 0) == 0) std::fputs(line.c_str(), stderr);
        else mpirun_text += line;
      }
      if (ec) {
        log.flush();
        output_done = true;
        finish_if_done();
        return;
      }
      read_output();
    });
  };
  std::function<void()> tick = [&] {
    timer.expires_after(std::chrono::milliseconds(static_cast<int64_t>(o_.tick_s * 1000)));
    timer.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      const proto::JobStatus st = server_.status();
      if (on_tick_) on_tick_(st);
      const double since_start = std::chrono::duration<double>(Clock::now() - started).count();
      // After the last phase (finished, or a STOP carried out) the ranks exit by design.
      const bool ending = st.finished() || st.phase() == proto::STOP ||
                          (st.history_size() > 0 && st.history(st.history_size() - 1).kind() == proto::STOP);
      for (const proto::RankStatus& rs : st.ranks()) {
        const bool here = rs.host() == host && rs.pid() > 0;
        if (here && !verified.count(rs.pid())) {
          // Decided once, while the process lives: ours only if it descends from our mpirun.
          verified[rs.pid()] = descends_from(static_cast<pid_t>(rs.pid()), pid);
          if (verified[rs.pid()]) local_pids[rs.rank()] = rs.pid();
        }
        if (ending) continue;
        const auto seen = registered_at.emplace(rs.rank(), Clock::now()).first->second;
        const double starting_s = std::chrono::duration<double>(Clock::now() - seen).count();
        if (rs.metrics().steps_per_epoch() == 0 && starting_s > o_.startup_deadline_s)
          fail("rank " + std::to_string(rs.rank()) + " (pid " + std::to_string(rs.pid()) + " on " + rs.host() +
               ") did not finish its start-up within " + std::to_string(static_cast<int>(o_.startup_deadline_s)) +
               " s of registering (control.startup_timeout_s)");
        if (here && verified[rs.pid()] && !alive(static_cast<pid_t>(rs.pid())))
          fail("rank " + std::to_string(rs.rank()) + " (pid " + std::to_string(rs.pid()) + " on " + rs.host() +
               ") exited unexpectedly");
        else if (rs.since_heartbeat_s() > o_.heartbeat_deadline_s)
          fail("rank " + std::to_string(rs.rank()) + " (pid " + std::to_string(rs.pid()) + " on " + rs.host() +
               ") sent no heartbeat for " + std::to_string(static_cast<int>(rs.since_heartbeat_s())) + " s");
      }
      if (st.registered() < st.world_size() && since_start > o_.register_deadline_s)
        fail("only " + std::to_string(st.registered()) + " of " + std::to_string(st.world_size()) +
             " ranks registered within " + std::to_string(static_cast<int>(o_.register_deadline_s)) + " s");
      // A descendant that kept mpirun's output open must not hold the attempt past mpirun's end.
      if (exited && Clock::now() - exited_at > std::chrono::seconds(2)) {
        io.stop();
        return;
      }
      if (!exited && Clock::now() >= kill_at) {
        ::kill(-pid, SIGKILL);
        kill_at = Clock::now() + std::chrono::seconds(1);
      }
      tick();
    });
  };
  wait_stop();
  wait_child();
  if (capture) read_output();
  tick();
  io.run();
  if (!exited) {
    int st = 0;
    ::waitpid(pid, &st, 0);
    r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }
  // Nothing of this attempt survives it: mpirun's group, and any worker of it on this host.
  ::kill(-pid, SIGKILL);
  for (const auto& [rank, wpid] : local_pids)
    if (alive(static_cast<pid_t>(wpid))) ::kill(static_cast<pid_t>(wpid), SIGKILL);
  const std::string notice = signal_notice(mpirun_text, local_pids);
  if (!notice.empty()) r.failure = notice;
  else if (r.failure.empty() && r.exit_code != 0 && capture)
    r.failure = argv[0] + " exited with status " + std::to_string(r.exit_code) + " (its output: " + o_.log_path + ")";
  return r;
}

}  // namespace lockstep
