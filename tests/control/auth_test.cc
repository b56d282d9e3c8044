// The credential check: every RPC, called on a raw stub with no token, a wrong token of the same
// length, shorter and longer ones, or two tokens, gets UNAUTHENTICATED and leaves the job's state as
// it was; the same calls with the right credential for each (worker secret for Register, the
// rank's session credential for the worker calls, the user token for Control) succeed, so the
// requests themselves are valid. Which credential opens which call: credentials_test.cc.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <functional>

#include "tests/control/control_test_util.h"

namespace lockstep {
namespace {

using testing::raw_stub;
using testing::server_options;
using testing::small_job;

// One call of each RPC, with metadata added by `prepare(context, rpc, session)` (`session`: the
// credential the Register before it got, if any); returns the statuses, RPC by RPC.
using Prepare = std::function<void(grpc::ClientContext&, const std::string& rpc, const std::string& session)>;
std::vector<std::pair<std::string, grpc::Status>> call_every_rpc(proto::Coordinator::Stub& stub,
                                                                 const Prepare& prepare) {
  std::vector<std::pair<std::string, grpc::Status>> out;
  std::string session;
  auto ctx = [&](const std::string& rpc) {
    auto c = std::make_unique<grpc::ClientContext>();
    testing::set_deadline(*c, 5);
    prepare(*c, rpc, session);
    return c;
  };
  {
    proto::RegisterRequest r = testing::register_request(0, 1);
    proto::RegisterReply reply;
    out.emplace_back("Register", stub.Register(ctx("Register").get(), r, &reply));
    session = reply.session();
  }
  {
    proto::HeartbeatRequest r;  // rank 0, registered by the Register above when authorized
    r.mutable_metrics()->set_step(7);
    proto::HeartbeatReply reply;
    out.emplace_back("Heartbeat", stub.Heartbeat(ctx("Heartbeat").get(), r, &reply));
  }
  {
    proto::NextPhasesRequest r;
    r.set_epoch(2);  // eval_every 2: EVAL planned, which would move the state off TRAIN
    proto::NextPhasesReply reply;
    out.emplace_back("NextPhases", stub.NextPhases(ctx("NextPhases").get(), r, &reply));
  }
  {
    proto::PhaseReport r;
    r.set_phase_id(1);
    r.set_kind(proto::EVAL);  // planned by the NextPhases above
    r.set_epoch(2);
    proto::PhaseReportReply reply;
    out.emplace_back("ReportPhase", stub.ReportPhase(ctx("ReportPhase").get(), r, &reply));
  }
  for (auto c : {proto::ControlRequest::STATUS, proto::ControlRequest::EVAL, proto::ControlRequest::PAUSE}) {
    proto::ControlRequest r;
    r.set_command(c);
    proto::ControlReply reply;
    out.emplace_back("Control " + proto::ControlRequest::Command_Name(c), stub.Control(ctx("Control").get(), r, &reply));
  }
  return out;
}

void expect_untouched(const CoordinatorServer& server, const std::string& what) {
  const proto::JobStatus s = server.status();
  EXPECT_EQ(s.registered(), 0) << what;
  EXPECT_EQ(s.ranks_size(), 0) << what;
  EXPECT_EQ(s.pending_size(), 0) << what;
  EXPECT_FALSE(s.paused()) << what;
  EXPECT_EQ(s.history_size(), 0) << what;
  EXPECT_EQ(s.phase(), proto::TRAIN) << what;
  EXPECT_EQ(s.phase_id(), 0u) << what;
}

TEST(CoordinatorAuth, EveryRpcRefusesMissingOrWrongToken) {
  const std::string token = new_token();
  ASSERT_EQ(token.size(), 64u);
  CoordinatorServer server(small_job(), 1, server_options(token));
  auto stub = raw_stub(server.address());

  std::string same_length = token;
  same_length.back() = same_length.back() == 'a' ? 'b' : 'a';
  const std::string secret = testing::worker_secret_for(token);
  using P = grpc::ClientContext&;
  using S = const std::string&;
  const std::vector<std::pair<std::string, Prepare>> cases = {
      {"no token", [](P, S, S) {}},
      {"same length, last digit differs", [&](P c, S, S) { c.AddMetadata("lockstep-token", same_length); }},
      {"prefix of the token", [&](P c, S, S) { c.AddMetadata("lockstep-token", token.substr(0, 63)); }},
      {"token plus a digit", [&](P c, S, S) { c.AddMetadata("lockstep-token", token + "0"); }},
      {"prefix of the worker secret", [&](P c, S, S) { c.AddMetadata("lockstep-token", secret.substr(0, 64)); }},
      {"a made-up session credential", [&](P c, S, S) { c.AddMetadata("lockstep-token", "rank0-" + token); }},
      {"empty token", [&](P c, S, S) { c.AddMetadata("lockstep-token", ""); }},
      {"right token under another key", [&](P c, S, S) { c.AddMetadata("authorization", token); }},
      {"right and wrong token together", [&](P c, S, S) {
         c.AddMetadata("lockstep-token", same_length);
         c.AddMetadata("lockstep-token", token);
       }},
  };
  for (const auto& [name, prepare] : cases) {
    for (const auto& [rpc, status] : call_every_rpc(*stub, prepare)) {
      EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << rpc << " with " << name;
      EXPECT_EQ(status.error_message(), "missing or wrong lockstep-token") << rpc << " with " << name;
    }
    expect_untouched(server, name);
  }

  // The same calls with the right credentials do what they say: the refusals above came from the
  // token.
  for (const auto& [rpc, status] : call_every_rpc(*stub, [&](P c, S rpc, S session) {
         c.AddMetadata("lockstep-token", rpc == "Register" ? secret : rpc == "Control" ? token : session);
       }))
    EXPECT_TRUE(status.ok()) << rpc << ": " << status.error_message();
  const proto::JobStatus s = server.status();
  EXPECT_EQ(s.registered(), 1);
  EXPECT_EQ(s.history_size(), 1);
  EXPECT_TRUE(s.paused());
  EXPECT_EQ(s.pending_size(), 2);  // EVAL and PAUSE
}

TEST(CoordinatorAuth, ClientReportsWrongToken) {
  CoordinatorServer server(small_job(), 1, server_options(new_token()));
  ClientOptions o = testing::client_options(server, new_token());
  CoordinatorClient c(o);
  try {
    c.control(proto::ControlRequest::STATUS);
    ADD_FAILURE() << "STATUS with a wrong token succeeded";
  } catch (const RpcError& e) {
    EXPECT_EQ(e.code(), static_cast<int>(grpc::StatusCode::UNAUTHENTICATED));
    const std::string w = e.what();
    EXPECT_NE(w.find("UNAUTHENTICATED"), std::string::npos) << w;
    EXPECT_NE(w.find("token is wrong"), std::string::npos) << w;
    EXPECT_NE(w.find(server.address()), std::string::npos) << w;
  }
  // register_worker does not retry an authentication failure.
  testing::Stopwatch w;
  proto::RegisterRequest r = testing::register_request(0, 1);
  EXPECT_THROW(c.register_worker(r, 20), RpcError);
  EXPECT_LT(w.seconds(), 5);
  expect_untouched(server, "client with a wrong token");
}

// Runs f with this process's stderr going to a file; returns what was written there.
template <typename F>
std::string stderr_of(F&& f) {
  std::fflush(stderr);
  char path[] = "/tmp/lockstep-stderr-XXXXXX";
  const int fd = ::mkstemp(path);
  const int saved = ::dup(2);
  ::dup2(fd, 2);
  f();
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);
  std::string out;
  char buf[4096];
  ::lseek(fd, 0, SEEK_SET);
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<size_t>(n));
  ::close(fd);
  ::unlink(path);
  return out;
}

// "A token file read with its trailing newline makes gRPC print the whole token to stderr."
TEST(CoordinatorAuth, TokenWithTrailingNewlineIsAcceptedAndNeverPrinted) {
  const std::string token = new_token();
  ServerOptions so = server_options(token + "\n");  // the server's own copy, read from a file
  CoordinatorServer server(small_job(), 1, so);
  const std::string err = stderr_of([&] {
    CoordinatorClient c(testing::client_options(server, token + "\n"));
    EXPECT_EQ(c.control(proto::ControlRequest::STATUS).status().job(), "control-test");
    CoordinatorClient w(testing::client_options(server, testing::worker_secret_for(token + "\n") + "\r\n"));
    EXPECT_NO_THROW(w.register_worker(testing::register_request(0, 1), 5));
  });
  EXPECT_EQ(err.find(token), std::string::npos) << "stderr shows the token:\n" << err;
  // A token no gRPC header can carry is refused before any call, without showing it.
  try {
    CoordinatorClient bad(testing::client_options(server, token.substr(0, 32) + "\n" + token.substr(32)));
    ADD_FAILURE() << "a client took a token with a newline inside";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("non-printable"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find(token.substr(0, 32)), std::string::npos) << e.what();
  }
}

TEST(CoordinatorAuth, ReadWorkerSecretSources) {
  ::unsetenv("LOCKSTEP_WORKER_SECRET");
  ::unsetenv("LOCKSTEP_WORKER_SECRET_FILE");
  try {
    read_worker_secret("");
    ADD_FAILURE() << "a worker secret appeared from nowhere";
  } catch (const Error& e) {
    const std::string w = e.what();
    for (const char* tried : {"--secret-file", "$LOCKSTEP_WORKER_SECRET", "$LOCKSTEP_WORKER_SECRET_FILE"})
      EXPECT_NE(w.find(tried), std::string::npos) << w;
  }
  ::setenv("LOCKSTEP_TOKEN", "user", 1);  // the user token is no worker secret
  EXPECT_THROW(read_worker_secret(""), Error);
  ::unsetenv("LOCKSTEP_TOKEN");
  ::setenv("LOCKSTEP_WORKER_SECRET", "s3cret\n", 1);
  EXPECT_EQ(read_worker_secret(""), "s3cret");
  ::unsetenv("LOCKSTEP_WORKER_SECRET");
}

TEST(CoordinatorAuth, ReadTokenSources) {
  EXPECT_THROW(read_token("/nonexistent/lockstep-token"), Error);
  ::unsetenv("LOCKSTEP_TOKEN");
  ::unsetenv("LOCKSTEP_TOKEN_FILE");
  try {
    read_token("");
    ADD_FAILURE() << "a token appeared from nowhere";
  } catch (const Error& e) {
    const std::string w = e.what();
    for (const char* tried : {"--token-file", "$LOCKSTEP_TOKEN", "$LOCKSTEP_TOKEN_FILE"})
      EXPECT_NE(w.find(tried), std::string::npos) << w;
  }
  ::setenv("LOCKSTEP_TOKEN", "abc \n", 1);
  EXPECT_EQ(read_token(""), "abc");
  ::unsetenv("LOCKSTEP_TOKEN");
  EXPECT_NE(new_token(), new_token());
}

}  // namespace
}  // namespace lockstep
