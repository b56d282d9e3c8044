// mpirun under a Boost.Asio watch: signals, child exit, heartbeats, local worker processes.
#include "launcher/launch/supervisor.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <utility>  // before Boost.Asio 1.74, which uses std::exchange without it
#include <boost/asio.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>

#include "runtime/check.h"

namespace lockstep {
namespace {

std::string this_host() {
  char h[256] = {};
  gethostname(h, sizeof h - 1);
  return h;
}

bool alive(pid_t pid) { return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM); }

pid_t spawn(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const pid_t pid = ::fork();
  LOCKSTEP_FAIL_IF(pid < 0) << "cannot start " << argv[0] << ": " << std::strerror(errno);
  if (pid == 0) {
    ::setpgid(0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);  // the launcher killed: the job goes with it
    ::signal(SIGINT, SIG_DFL);
    ::signal(SIGTERM, SIG_DFL);
    ::execvp(args[0], args.data());
    std::fprintf(stderr, "lockstep launch: cannot run %s: %s\n", args[0], std::strerror(errno));
    std::_Exit(127);
  }
  ::setpgid(pid, pid);
  return pid;
}

}  // namespace

Supervisor::Supervisor(CoordinatorServer& server, SupervisorOptions o,
                       std::function<void(const proto::JobStatus&)> on_tick)
    : server_(server), o_(o), on_tick_(std::move(on_tick)) {}

AttemptResult Supervisor::run(const std::vector<std::string>& argv) {
  using Clock = std::chrono::steady_clock;
  boost::asio::io_context io;
  boost::asio::signal_set stops(io, SIGINT, SIGTERM);
  boost::asio::signal_set children(io, SIGCHLD);
  boost::asio::steady_timer timer(io);
  AttemptResult r;
  const pid_t pid = spawn(argv);
  const std::string host = this_host();
  const auto started = Clock::now();
  bool exited = false;
  Clock::time_point kill_at = Clock::time_point::max();  // when to SIGKILL the group
  std::map<int, int64_t> local_pids;                     // rank -> pid of the ranks on this host

  auto fail = [&](const std::string& why) {
    if (r.failure.empty()) r.failure = why;
    if (kill_at == Clock::time_point::max()) {
      ::kill(-pid, SIGTERM);
      kill_at = Clock::now() + std::chrono::seconds(2);
    }
  };
  std::function<void()> wait_stop = [&] {
    stops.async_wait([&](const boost::system::error_code& ec, int sig) {
      if (ec) return;
      if (!r.stop_requested) {
        r.stop_requested = true;
        std::fprintf(stderr, "\nlockstep launch: %s: checkpointing at the next step and stopping (again to kill)\n",
                     strsignal(sig));
        try {
          server_.request(proto::ControlRequest::STOP);
        } catch (const std::exception& e) {
          fail(std::string("cannot stop the job cleanly: ") + e.what());
        }
      } else {
        r.killed = true;
        fail(std::string("killed on a second ") + strsignal(sig));
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
        r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        io.stop();
        return;
      }
      wait_child();
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
        if (rs.host() == host && rs.pid() > 0) local_pids[rs.rank()] = rs.pid();
        if (ending) continue;
        if (rs.host() == host && rs.pid() > 0 && !alive(static_cast<pid_t>(rs.pid())))
          fail("rank " + std::to_string(rs.rank()) + " (pid " + std::to_string(rs.pid()) + " on " + rs.host() +
               ") exited unexpectedly");
        else if (rs.since_heartbeat_s() > o_.heartbeat_deadline_s)
          fail("rank " + std::to_string(rs.rank()) + " (pid " + std::to_string(rs.pid()) + " on " + rs.host() +
               ") sent no heartbeat for " + std::to_string(static_cast<int>(rs.since_heartbeat_s())) + " s");
      }
      if (st.registered() < st.world_size() && since_start > o_.register_deadline_s)
        fail("only " + std::to_string(st.registered()) + " of " + std::to_string(st.world_size()) +
             " ranks registered within " + std::to_string(static_cast<int>(o_.register_deadline_s)) + " s");
      if (Clock::now() >= kill_at) {
        ::kill(-pid, SIGKILL);
        kill_at = Clock::now() + std::chrono::seconds(1);
      }
      tick();
    });
  };
  wait_stop();
  wait_child();
  tick();
  io.run();
  if (!exited) {
    int st = 0;
    ::waitpid(pid, &st, 0);
    r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  }
  // Nothing of this attempt survives it: mpirun's group, and any worker on this host.
  ::kill(-pid, SIGKILL);
  for (const auto& [rank, wpid] : local_pids)
    if (alive(static_cast<pid_t>(wpid))) ::kill(static_cast<pid_t>(wpid), SIGKILL);
  return r;
}

}  // namespace lockstep
