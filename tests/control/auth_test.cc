// The token check: every RPC, called on a raw stub with no token, a wrong token of the same length,
// shorter and longer ones, or two tokens, gets UNAUTHENTICATED and leaves the job's state as it was;
// the same calls with the right token succeed (so the requests themselves are valid).
#include <gtest/gtest.h>

#include <functional>

#include "tests/control/control_test_util.h"

namespace lockstep {
namespace {

using testing::raw_stub;
using testing::server_options;
using testing::small_job;

// One call of each RPC, with metadata added by `prepare`; returns the statuses, RPC by RPC.
std::vector<std::pair<std::string, grpc::Status>> call_every_rpc(
    proto::Coordinator::Stub& stub, const std::function<void(grpc::ClientContext&)>& prepare) {
  std::vector<std::pair<std::string, grpc::Status>> out;
  auto ctx = [&] {
    auto c = std::make_unique<grpc::ClientContext>();
    testing::set_deadline(*c, 5);
    prepare(*c);
    return c;
  };
  {
    proto::RegisterRequest r;
    r.set_rank(0);
    r.set_world_size(1);
    proto::RegisterReply reply;
    out.emplace_back("Register", stub.Register(ctx().get(), r, &reply));
  }
  {
    proto::HeartbeatRequest r;  // rank 0, registered by the Register above when authorized
    r.mutable_metrics()->set_step(7);
    proto::HeartbeatReply reply;
    out.emplace_back("Heartbeat", stub.Heartbeat(ctx().get(), r, &reply));
  }
  {
    proto::NextPhasesRequest r;
    r.set_epoch(2);  // eval_every 2: EVAL planned, which would move the state off TRAIN
    proto::NextPhasesReply reply;
    out.emplace_back("NextPhases", stub.NextPhases(ctx().get(), r, &reply));
  }
  {
    proto::PhaseReport r;
    r.set_phase_id(1);
    r.set_kind(proto::EVAL);
    proto::PhaseReportReply reply;
    out.emplace_back("ReportPhase", stub.ReportPhase(ctx().get(), r, &reply));
  }
  for (auto c : {proto::ControlRequest::STATUS, proto::ControlRequest::EVAL, proto::ControlRequest::PAUSE}) {
    proto::ControlRequest r;
    r.set_command(c);
    proto::ControlReply reply;
    out.emplace_back("Control " + proto::ControlRequest::Command_Name(c), stub.Control(ctx().get(), r, &reply));
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
  const std::vector<std::pair<std::string, std::function<void(grpc::ClientContext&)>>> cases = {
      {"no token", [](grpc::ClientContext&) {}},
      {"same length, last digit differs", [&](grpc::ClientContext& c) { c.AddMetadata("lockstep-token", same_length); }},
      {"prefix of the token", [&](grpc::ClientContext& c) { c.AddMetadata("lockstep-token", token.substr(0, 63)); }},
      {"token plus a digit", [&](grpc::ClientContext& c) { c.AddMetadata("lockstep-token", token + "0"); }},
      {"empty token", [&](grpc::ClientContext& c) { c.AddMetadata("lockstep-token", ""); }},
      {"right token under another key", [&](grpc::ClientContext& c) { c.AddMetadata("authorization", token); }},
      {"right and wrong token together", [&](grpc::ClientContext& c) {
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

  // The same calls with the right token do what they say: the refusals above came from the token.
  for (const auto& [rpc, status] :
       call_every_rpc(*stub, [&](grpc::ClientContext& c) { c.AddMetadata("lockstep-token", token); }))
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
  proto::RegisterRequest r;
  r.set_world_size(1);
  EXPECT_THROW(c.register_worker(r, 20), RpcError);
  EXPECT_LT(w.seconds(), 5);
  expect_untouched(server, "client with a wrong token");
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
