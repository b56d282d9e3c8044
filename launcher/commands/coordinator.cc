// `lockstep coordinator JOB -n N`: runs a job's coordinator on its own (workers started elsewhere
// register with it). Checks the job for N ranks, makes the job token unless its file exists
// (default <run_dir>/token, mode 0600), serves until rank 0 reports the job finished or stopped.
// Exit status: 0 the job finished (or was stopped by ctl); on SIGINT/SIGTERM it asks the job to
// STOP and waits up to 60 s for that (0 if it came), else, or on a second signal, 128 + the signal.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>

#include "launcher/cli_number.h"
#include "launcher/commands/commands.h"
#include "launcher/coordinator/client.h"
#include "launcher/coordinator/server.h"
#include "launcher/job_file.h"
#include "runtime/check.h"

namespace lockstep {
namespace {

constexpr const char* kUsage =
    "lockstep coordinator JOB.textproto -n N [--bind ADDR] [--port P] [--token-file F] [--run-dir D] [--resume] "
    "[--tls-cert F --tls-key F [--tls-client-ca F]]";
constexpr double kStopWaitS = 60;
constexpr int64_t kMaxRanks = 1 << 20;

// The token in `path`, or a new one written there with mode 0600.
std::string ensure_token(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (st.st_mode & 077)
      std::fprintf(stderr, "coordinator: warning: token file %s is readable by others (mode %03o); chmod 600 it\n",
                   path.c_str(), static_cast<unsigned>(st.st_mode & 0777));
    return read_token(path);
  }
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  const std::string token = new_token();
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  LOCKSTEP_FAIL_IF(fd < 0) << "cannot create token file " << path << ": " << std::strerror(errno);
  const std::string line = token + "\n";
  const bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ::close(fd);
  LOCKSTEP_FAIL_IF(!ok) << "cannot write token file " << path;
  return token;
}

int coordinator_main(int argc, char** argv) {
  std::string job_path, run_dir, token_file;
  int world = 0;
  ServerOptions o;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      LOCKSTEP_FAIL_IF(i + 1 >= argc) << a << " needs a value";
      return argv[++i];
    };
    if (a == "-h" || a == "--help") {
      std::printf("usage: %s\n", kUsage);
      return 0;
    } else if (a == "-n") world = static_cast<int>(cli::whole_number(a, value(), 1, kMaxRanks));
    else if (a == "--bind") o.bind = value();
    else if (a == "--port") o.port = static_cast<int>(cli::whole_number(a, value(), 0, 65535));
    else if (a == "--token-file") token_file = value();
    else if (a == "--run-dir") run_dir = value();
    else if (a == "--resume") o.resume = true;
    else if (a == "--tls-cert") o.tls_cert = value();
    else if (a == "--tls-key") o.tls_key = value();
    else if (a == "--tls-client-ca") o.tls_client_ca = value();
    else if (!a.empty() && a[0] == '-') LOCKSTEP_FAIL_IF(true) << "unknown option " << a << "\nusage: " << kUsage;
    else if (job_path.empty()) job_path = a;
    else LOCKSTEP_FAIL_IF(true) << "unexpected argument " << a << "\nusage: " << kUsage;
  }
  LOCKSTEP_FAIL_IF(job_path.empty()) << "no job file given\nusage: " << kUsage;
  LOCKSTEP_FAIL_IF(world < 1) << "-n N (the number of ranks, >= 1) is required";

  proto::JobSpec job = load_job(job_path);
  check_job_for_launch(job, job_path, world);
  if (run_dir.empty()) run_dir = job.run_dir().empty() ? "runs/" + job.name() : job.run_dir();
  o.run_dir = std::filesystem::absolute(run_dir).lexically_normal().string();
  std::filesystem::create_directories(o.run_dir);
  if (token_file.empty()) token_file = o.run_dir + "/token";
  o.token = ensure_token(token_file);
  const Heartbeat hb = heartbeat_of(job);
  o.heartbeat_interval_s = hb.interval_s;
  o.coordinator_timeout_s = hb.timeout_s;

  CoordinatorServer server(job, world, o);
  std::printf("coordinator listening on %s (token in %s)\n", server.address().c_str(), token_file.c_str());
  std::fflush(stdout);

  boost::asio::io_context io;
  boost::asio::signal_set signals(io, SIGINT, SIGTERM);
  boost::asio::steady_timer poll(io);
  int rc = -1, first_signal = 0;
  std::chrono::steady_clock::time_point stop_deadline;

  std::function<void(const boost::system::error_code&, int)> on_signal = [&](const boost::system::error_code& ec,
                                                                             int sig) {
    if (ec) return;
    if (first_signal) {  // the second one: leave now
      std::fprintf(stderr, "coordinator: %s again: exiting without waiting for the job\n", strsignal(sig));
      rc = 128 + sig;
      io.stop();
      return;
    }
    first_signal = sig;
    stop_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(static_cast<int>(kStopWaitS));
    const proto::JobStatus s = server.status();
    if (!s.finished() && s.registered() == 0) {  // no rank to carry out a STOP
      std::fprintf(stderr, "coordinator: %s: no rank registered; exiting\n", strsignal(sig));
      rc = 128 + sig;
      io.stop();
      return;
    }
    try {
      const uint64_t id = server.request(proto::ControlRequest::STOP);
      std::fprintf(stderr, "coordinator: %s: asked job %s to STOP (directive %llu); waiting up to %.0f s, signal "
                   "again to exit now\n", strsignal(sig), s.job().c_str(), static_cast<unsigned long long>(id),
                   kStopWaitS);
    } catch (const Error&) {  // finished meanwhile: the poll below ends the run
    }
    signals.async_wait(on_signal);
  };
  signals.async_wait(on_signal);

  std::function<void(const boost::system::error_code&)> on_poll = [&](const boost::system::error_code& ec) {
    if (ec) return;
    const proto::JobStatus s = server.status();
    if (s.finished()) {
      std::printf("coordinator: job %s %s\n", s.job().c_str(),
                  s.history_size() > 0 && s.history(s.history_size() - 1).finished() ? "finished" : "stopped");
      rc = 0;
      // A moment for the ranks' last calls (and a `ctl --wait` poll) to get their answers.
      poll.expires_after(std::chrono::seconds(1));
      poll.async_wait([&](const boost::system::error_code&) { io.stop(); });
      return;
    }
    if (first_signal && std::chrono::steady_clock::now() >= stop_deadline) {
      std::fprintf(stderr, "coordinator: job %s did not stop within %.0f s of %s; exiting\n", s.job().c_str(),
                   kStopWaitS, strsignal(first_signal));
      rc = 128 + first_signal;
      io.stop();
      return;
    }
    poll.expires_after(std::chrono::milliseconds(200));
    poll.async_wait(on_poll);
  };
  poll.expires_after(std::chrono::milliseconds(200));
  poll.async_wait(on_poll);

  io.run();
  std::fflush(stdout);
  return rc;
}

commands::Registrar reg("coordinator", kUsage, &coordinator_main);

}  // namespace
}  // namespace lockstep
