// `lockstep coordinator JOB -n N`: runs a job's coordinator on its own (workers started elsewhere
// register with it). Checks the job for N ranks, makes its two credentials unless their files
// exist (mode 0600): the user token for `lockstep ctl` (default <run_dir>/token) and the worker
// secret for the workers only (default <run_dir>/worker_secret; hand it to them through mpirun's
// environment). Serves until rank 0 reports the job finished or stopped.
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

#include "launcher/cli.h"
#include "launcher/commands/commands.h"
#include "launcher/coordinator/client.h"
#include "launcher/coordinator/run_files.h"
#include "launcher/coordinator/server.h"
#include "launcher/job_file.h"
#include "launcher/launch/run_dir.h"
#include "launcher/job_override.h"
#include "launcher/resume_check.h"
#include "runtime/check.h"

namespace lockstep {
namespace {

constexpr const char* kUsage =
    "lockstep coordinator JOB.textproto -n N [--bind ADDR] [--port P] [--token-file F] [--worker-secret-file F] "
    "[--run-dir D] [--resume] [--tls-cert F --tls-key F [--tls-client-ca F]] [--set FIELD=VALUE]...";
constexpr const char* kCredentials =
    "credentials (made if missing, mode 0600): --token-file (default RUN_DIR/token) is the user token, for\n"
    "`lockstep ctl --token-file F` only; --worker-secret-file (default RUN_DIR/worker_secret) is for the\n"
    "workers only, e.g. LOCKSTEP_WORKER_SECRET_FILE=F mpirun -x LOCKSTEP_WORKER_SECRET_FILE ... lockstep worker\n"
    "--coordinator HOST:PORT (or lockstep worker --secret-file F); give it to no user";
constexpr double kStopWaitS = 60;
constexpr int64_t kMaxRanks = 1 << 20;

// The credential in `path` (read by `read`), or a new one written there with mode 0600.
std::string ensure_token(const std::string& path, const char* what, std::string (*read)(const std::string&)) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (st.st_mode & 077)
      std::fprintf(stderr, "coordinator: warning: %s file %s is readable by others (mode %03o); chmod 600 it\n",
                   what, path.c_str(), static_cast<unsigned>(st.st_mode & 0777));
    return read(path);
  }
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  const std::string token = new_token();
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  LOCKSTEP_FAIL_IF(fd < 0) << "cannot create " << what << " file " << path << ": " << std::strerror(errno);
  const std::string line = token + "\n";
  const bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ::close(fd);
  LOCKSTEP_FAIL_IF(!ok) << "cannot write " << what << " file " << path;
  return token;
}

int coordinator_main(int argc, char** argv) {
  std::string job_path, run_dir, token_file, secret_file;
  std::vector<std::string> sets;  // --set FIELD=VALUE (launcher/job_override.h), in order
  int world = 0;
  ServerOptions o;
  cli::CommandLine cl(std::string("usage: ") + kUsage + "\n" + kCredentials + "\n", std::string("; usage: ") + kUsage);
  cl.whole("-n", world, 1, kMaxRanks);
  cl.text("--bind", o.bind);
  cl.whole("--port", o.port, 0, 65535);
  cl.text("--token-file", token_file);
  cl.text("--worker-secret-file", secret_file);
  cl.text("--run-dir", run_dir);
  cl.flag("--resume", o.resume);
  cl.text("--tls-cert", o.tls_cert);
  cl.text("--tls-key", o.tls_key);
  cl.text("--tls-client-ca", o.tls_client_ca);
  cl.texts("--set", sets);
  cl.positional("job", job_path);
  if (!cl.parse(argc, argv)) return 0;  // --help
  LOCKSTEP_FAIL_IF(job_path.empty()) << "no job file given; usage: " << kUsage;
  LOCKSTEP_FAIL_IF(world < 1) << "-n N (the number of ranks, >= 1) is required";

  proto::JobSpec job = parse_job(job_path);  // validated after the overrides, by check_job_for_launch
  apply_overrides(job, sets);
  check_with_overrides(sets, [&] {
    job.set_name(checked_job_name(job, job_path));
    job.set_metrics_file(checked_metrics_file(job, job_path));
    check_job_for_launch(job, job_path, world);
  });
  if (run_dir.empty()) run_dir = job.run_dir().empty() ? "runs/" + job.name() : job.run_dir();
  RunDirectory dir(run_dir, job.name(), RunDirOptions{.resume = o.resume, .metrics_file = job.metrics_file()});
  o.run_dir = dir.path();
  if (o.resume) check_with_overrides(sets, [&] { check_resume(job, dir.path(), world); });
  if (token_file.empty()) token_file = o.run_dir + "/token";
  if (secret_file.empty()) secret_file = o.run_dir + "/worker_secret";
  o.token = ensure_token(token_file, "token", &read_token);
  o.worker_secret = ensure_token(secret_file, "worker secret", &read_worker_secret);
  dir.write_job(job);  // for lockstep report
  const Heartbeat hb = heartbeat_of(job);
  o.heartbeat_interval_s = hb.interval_s;
  o.coordinator_timeout_s = hb.timeout_s;

  CoordinatorFiles files;  // RUN_DIR/coordinator.json, removed after the server stopped
  CoordinatorServer server(job, world, o);
  files.started(dir.path(), address_record(server.address(), !o.tls_cert.empty(), job.name(), token_file));
  dir.commit();
  std::printf("coordinator listening on %s (token in %s)\n"
              "coordinator: `lockstep ctl` takes the token (--token-file %s); workers take the worker secret in %s "
              "and nothing else: LOCKSTEP_WORKER_SECRET_FILE=%s mpirun -x LOCKSTEP_WORKER_SECRET_FILE -np %d "
              "lockstep worker --coordinator %s\n",
              server.address().c_str(), token_file.c_str(), token_file.c_str(), secret_file.c_str(),
              secret_file.c_str(), world, server.address().c_str());
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
  // RUN_DIR/result.json, then FINISHED to every Watch (up to 2 s), then the server stops.
  const proto::JobResult result =
      server.result(rc, rc == 0 ? "" : "the coordinator exited with status " + std::to_string(rc) +
                                           " (a signal) before the job ended");
  try {
    files.ended(result);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "coordinator: warning: %s\n", e.what());
  }
  server.finish(result);
  std::fflush(stdout);
  return rc;
}

commands::Registrar reg("coordinator", kUsage, &coordinator_main);

}  // namespace
}  // namespace lockstep
