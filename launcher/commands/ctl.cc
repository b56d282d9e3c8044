// `lockstep ctl`: queries and commands a running job through its coordinator. status prints the
// job, its phase, every rank's progress and the phase history; eval / checkpoint / pause / stop
// queue a directive for rank 0 and print its id (with --wait S: until rank 0 reported it, then its
// result); resume ends a pause; watch prints the job's events (the Watch stream) until it ends.
// --run-dir DIR finds the coordinator in DIR/coordinator.json and the token in DIR/token.
// Exit status: 0 done; 3 UNAUTHENTICATED (no token found, or the coordinator refused it) or
// PERMISSION_DENIED (a credential that is not the user token, e.g. the worker secret);
// 4 coordinator unreachable (UNAVAILABLE, DEADLINE_EXCEEDED); 1 any other error.
#include <grpcpp/support/status_code_enum.h>

#include <cctype>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>

#include "launcher/cli.h"
#include "launcher/commands/commands.h"
#include "launcher/coordinator/client.h"
#include "launcher/coordinator/grpc_util.h"
#include "launcher/coordinator/run_files.h"
#include "launcher/coordinator/status_format.h"
#include "runtime/check.h"

namespace lockstep {
namespace {

constexpr double kMaxWaitS = 7 * 86400;  // a week

constexpr const char* kUsage =
    "lockstep ctl status|eval|checkpoint|pause|resume|stop|watch (--coordinator HOST:PORT | --run-dir DIR) "
    "[--token-file F] [--tls-ca F] [--tls-cert F --tls-key F] [--wait S] [--interval S]";
constexpr const char* kHelp =
    "the token: --token-file F (RUN_DIR/token), else $LOCKSTEP_TOKEN, else the file $LOCKSTEP_TOKEN_FILE; the "
    "workers' secret is not accepted\n--run-dir DIR: the coordinator's address from DIR/coordinator.json, the token "
    "from DIR/token (unless --token-file)\nwatch: the job's events until it ends, a STATUS every --interval S "
    "(default 10)\nexit status: 0 done, 3 UNAUTHENTICATED or PERMISSION_DENIED (no token, or a wrong one), 4 "
    "coordinator unreachable, 1 other errors\n";

proto::ControlRequest::Command command_of(const std::string& word) {
  proto::ControlRequest::Command c;
  std::string upper;
  for (char ch : word) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  LOCKSTEP_FAIL_IF(!proto::ControlRequest::Command_Parse(upper, &c))
      << "unknown command \"" << word << "\"; usage: " << kUsage;
  return c;
}

// Polls STATUS until rank 0 reported directive `id`; returns that report. Throws after wait_s.
proto::PhaseReport wait_for(CoordinatorClient& client, uint64_t id, double wait_s) {
  using Clock = std::chrono::steady_clock;
  const auto end = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(wait_s));
  proto::JobStatus s;
  for (;;) {
    s = client.control(proto::ControlRequest::STATUS).status();
    for (const proto::PhaseReport& r : s.history())
      if (r.directive_id() == id) return r;
    LOCKSTEP_FAIL_IF(s.finished()) << "the job " << s.job() << " ended before directive " << id << " ran";
    if (Clock::now() >= end) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  LOCKSTEP_FAIL_IF(true) << "directive " << id << " not run within " << wait_s << " s (job " << s.job()
                         << " in phase " << proto::PhaseKind_Name(s.phase()) << ", " << s.registered() << "/"
                         << s.world_size() << " ranks registered)";
  return {};
}

// `ctl watch`: one line per event until FINISHED (the stream then ends).
int watch(CoordinatorClient& client, double interval_s) {
  proto::WatchRequest req;
  req.set_status_interval_s(interval_s);
  client.watch(req, [](const proto::WatchEvent& e) {
    std::printf("%llu %s %s\n", static_cast<unsigned long long>(e.seq()),
                proto::WatchEvent::Kind_Name(e.kind()).c_str(), e.message().c_str());
    std::fflush(stdout);
    return true;
  });
  return 0;
}

int run(int argc, char** argv) {
  std::string word, token_file, run_dir;
  ClientOptions o;
  double wait_s = -1, interval_s = 0;
  cli::CommandLine cl(std::string("usage: ") + kUsage + "\n" + kHelp, std::string("; usage: ") + kUsage);
  cl.text("--coordinator", o.address);
  cl.text("--token-file", token_file);
  cl.text("--tls-ca", o.tls_ca);
  cl.text("--tls-cert", o.tls_cert);
  cl.text("--tls-key", o.tls_key);
  cl.real("--wait", wait_s, 0, kMaxWaitS);
  cl.text("--run-dir", run_dir);
  cl.real("--interval", interval_s, 0.1, 3600);
  cl.positional("command", word);
  if (!cl.parse(argc, argv)) return 0;  // --help
  LOCKSTEP_FAIL_IF(word.empty()) << "no command given; usage: " << kUsage;
  LOCKSTEP_FAIL_IF(o.address.empty() && run_dir.empty()) << "--coordinator HOST:PORT or --run-dir DIR is required";
  LOCKSTEP_FAIL_IF(!o.address.empty() && !run_dir.empty())
      << "--coordinator " << o.address << " and --run-dir " << run_dir << ": give one of them";
  const bool watching = word == "watch";
  const proto::ControlRequest::Command c = watching ? proto::ControlRequest::STATUS : command_of(word);
  if (!run_dir.empty()) {
    proto::CoordinatorAddress at;
    try {
      at = read_address_file(run_dir);
    } catch (const Error& e) {  // no coordinator there now: as unreachable
      throw RpcError(e.what(), static_cast<int>(grpc::StatusCode::UNAVAILABLE));
    }
    LOCKSTEP_FAIL_IF(at.tls() && o.tls_ca.empty())
        << "--run-dir " << run_dir << ": the coordinator at " << at.address()
        << " speaks TLS; give --tls-ca F (the CA of its certificate)";
    o.address = at.address();
    if (token_file.empty()) token_file = at.token_file().empty() ? run_dir + "/token" : at.token_file();
  }
  grpc_util::check_address(o.address, "--coordinator");
  try {
    o.token = read_token(token_file);
  } catch (const Error& e) {
    throw RpcError(e.what(), static_cast<int>(grpc::StatusCode::UNAUTHENTICATED));
  }

  CoordinatorClient client(o);
  if (watching) return watch(client, interval_s);
  const proto::ControlReply reply = client.control(c);
  if (c == proto::ControlRequest::STATUS) {
    std::fputs(status_format::status(reply.status()).c_str(), stdout);
    return 0;
  }
  if (c == proto::ControlRequest::RESUME) {
    std::printf("resumed job %s\n", reply.status().job().c_str());
    return 0;
  }
  std::printf("queued %s as directive %llu for job %s\n", proto::ControlRequest::Command_Name(c).c_str(),
              static_cast<unsigned long long>(reply.directive_id()), reply.status().job().c_str());
  std::fflush(stdout);
  if (wait_s >= 0) std::printf("%s\n", status_format::report(wait_for(client, reply.directive_id(), wait_s)).c_str());
  return 0;
}

int ctl_main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const RpcError& e) {
    const auto code = static_cast<grpc::StatusCode>(e.code());
    const char* name = code == grpc::StatusCode::UNAUTHENTICATED     ? "UNAUTHENTICATED"
                       : code == grpc::StatusCode::PERMISSION_DENIED ? "PERMISSION_DENIED"
                       : code == grpc::StatusCode::UNAVAILABLE       ? "UNAVAILABLE"
                       : code == grpc::StatusCode::DEADLINE_EXCEEDED ? "DEADLINE_EXCEEDED"
                                                                    : "error";
    std::cerr << "lockstep ctl: " << name << ": " << e.what() << "\n";
    if (code == grpc::StatusCode::UNAUTHENTICATED || code == grpc::StatusCode::PERMISSION_DENIED) return 3;
    if (code == grpc::StatusCode::UNAVAILABLE || code == grpc::StatusCode::DEADLINE_EXCEEDED) return 4;
    return 1;
  }
}

lockstep::commands::Registrar reg("ctl", kUsage, &ctl_main);

}  // namespace
}  // namespace lockstep
