// Who may call what. Each attack a scripting client with the job's (user) token tried against the
// coordinator is refused here, in-process over 127.0.0.1: the user token opens Control only, the
// worker secret Register only, and a rank's session credential only that rank's worker calls; a
// registered rank cannot be taken over; rank 0's own reports are held to the phases the
// coordinator issued. A refused call changes nothing, so the job goes on.
#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include "tests/control/control_test_util.h"

namespace lockstep {
namespace {

using testing::client_options;
using testing::register_request;
using testing::server_options;
using testing::small_job;

constexpr int kWorld = 2;

// A call's status from a raw stub carrying `credential`.
template <typename Req, typename Reply, typename Call>
grpc::Status call(const std::string& credential, Call&& rpc, const Req& req, Reply* reply) {
  grpc::ClientContext ctx;
  testing::set_deadline(ctx, 5);
  ctx.AddMetadata("lockstep-token", credential);
  return rpc(&ctx, req, reply);
}

// A job on two ranks, both registered as workers would; the fixture keeps the credentials.
class Credentials : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<CoordinatorServer>(small_job(), kWorld, server_options(token_));
    stub_ = testing::raw_stub(server_->address());
    for (int r = 0; r < kWorld; ++r) {
      proto::RegisterReply reply;
      ASSERT_TRUE(call(secret_, [&](auto* c, auto& q, auto* p) { return stub_->Register(c, q, p); },
                       register_request(r, kWorld), &reply).ok());
      session_.push_back(reply.session());
    }
  }
  grpc::Status heartbeat(const std::string& credential, int rank, int64_t step = 1) {
    proto::HeartbeatRequest r;
    r.set_rank(rank);
    r.mutable_metrics()->set_step(step);
    proto::HeartbeatReply reply;
    return call(credential, [&](auto* c, auto& q, auto* p) { return stub_->Heartbeat(c, q, p); }, r, &reply);
  }
  grpc::Status report(const std::string& credential, const proto::PhaseReport& r) {
    proto::PhaseReportReply reply;
    return call(credential, [&](auto* c, auto& q, auto* p) { return stub_->ReportPhase(c, q, p); }, r, &reply);
  }
  grpc::Status next_phases(const std::string& credential, int rank, int64_t epoch) {
    proto::NextPhasesRequest r;
    r.set_rank(rank);
    r.set_epoch(epoch);
    proto::NextPhasesReply reply;
    return call(credential, [&](auto* c, auto& q, auto* p) { return stub_->NextPhases(c, q, p); }, r, &reply);
  }
  grpc::Status control(const std::string& credential, proto::ControlRequest::Command command) {
    proto::ControlRequest r;
    r.set_command(command);
    proto::ControlReply reply;
    return call(credential, [&](auto* c, auto& q, auto* p) { return stub_->Control(c, q, p); }, r, &reply);
  }
  grpc::Status register_as(const std::string& credential, int rank, int64_t pid) {
    proto::RegisterRequest r = register_request(rank, kWorld);
    r.set_pid(pid);
    proto::RegisterReply reply;
    return call(credential, [&](auto* c, auto& q, auto* p) { return stub_->Register(c, q, p); }, r, &reply);
  }

  const std::string token_ = new_token();
  const std::string secret_ = testing::worker_secret_for(token_);
  std::unique_ptr<CoordinatorServer> server_;
  std::unique_ptr<proto::Coordinator::Stub> stub_;
  std::vector<std::string> session_;  // by rank
};

void expect_status(const grpc::Status& s, grpc::StatusCode code, const std::string& names) {
  EXPECT_EQ(s.error_code(), code) << s.error_message();
  EXPECT_NE(s.error_message().find(names), std::string::npos) << s.error_message();
}

proto::PhaseReport phase_report(uint64_t phase_id, proto::PhaseKind kind, int64_t epoch) {
  proto::PhaseReport r;
  r.set_rank(0);
  r.set_phase_id(phase_id);
  r.set_kind(kind);
  r.set_epoch(epoch);
  return r;
}

TEST_F(Credentials, SessionsAreDistinctPerRankAndSecret) {
  ASSERT_EQ(session_.size(), 2u);
  EXPECT_NE(session_[0], session_[1]);
  for (const std::string& s : session_) {
    EXPECT_EQ(s.find(token_), std::string::npos);
    EXPECT_EQ(s.find(secret_), std::string::npos);
  }
}

// "call Register as rank 1 with another process's pid: the launcher later SIGKILLed that process"
// and "register with a dead pid, which kills the job in 3.3 s".
TEST_F(Credentials, UserTokenCannotRegisterAndARankCannotBeTakenOver) {
  const int64_t other_pid = ::getppid(), dead_pid = 4194303;
  for (int64_t pid : {other_pid, dead_pid})
    expect_status(register_as(token_, 1, pid), grpc::StatusCode::PERMISSION_DENIED,
                  "Register needs the worker secret");
  // Even with the worker secret, rank 1 is registered in this attempt: refused, naming the rank.
  expect_status(register_as(secret_, 1, other_pid), grpc::StatusCode::ALREADY_EXISTS,
                "rank 1 is already registered in attempt 0");
  expect_status(register_as(session_[1], 1, other_pid), grpc::StatusCode::PERMISSION_DENIED,
                "Register needs the worker secret");
  // pid 0 and -1 would signal process groups.
  server_->new_attempt(true);
  for (int64_t pid : {0, -1}) expect_status(register_as(secret_, 1, pid), grpc::StatusCode::INVALID_ARGUMENT, "pid");
  EXPECT_EQ(server_->status().registered(), 0);
  // A restart attempt starts fresh: the rank registers again, its old session is void.
  EXPECT_TRUE(register_as(secret_, 1, 4242).ok());
  const proto::JobStatus s = server_->status();
  ASSERT_EQ(s.ranks_size(), 1);
  EXPECT_EQ(s.ranks(0).pid(), 4242);
  expect_status(heartbeat(session_[1], 1), grpc::StatusCode::UNAUTHENTICATED, "lockstep-token");
}

TEST_F(Credentials, RegisteredPidStaysAfterRefusals) {
  register_as(token_, 1, 1);
  register_as(secret_, 1, 1);
  const proto::JobStatus s = server_->status();
  ASSERT_EQ(s.ranks_size(), kWorld);
  EXPECT_EQ(s.ranks(1).pid(), register_request(1, kWorld).pid());
}

// A Register whose reply was lost is sent again by the same process (same nonce, same pid): it gets
// the same session. Anyone else, even with the worker secret and that pid, is refused.
TEST(CredentialRetry, RetriedRegisterGetsTheSameSessionOthersAreRefused) {
  const std::string token = new_token(), secret = testing::worker_secret_for(token);
  CoordinatorServer server(small_job(), 1, server_options(token));
  auto stub = testing::raw_stub(server.address());
  auto reg = [&](const std::string& nonce, int64_t pid, proto::RegisterReply* reply) {
    proto::RegisterRequest r = register_request(0, 1);
    r.set_nonce(nonce);
    r.set_pid(pid);
    return call(secret, [&](auto* c, auto& q, auto* p) { return stub->Register(c, q, p); }, r, reply);
  };
  const std::string nonce = new_token();
  proto::RegisterReply first, retry, other;
  ASSERT_TRUE(reg(nonce, 77, &first).ok());
  ASSERT_TRUE(reg(nonce, 77, &retry).ok());
  EXPECT_EQ(retry.session(), first.session());
  expect_status(reg(new_token(), 77, &other), grpc::StatusCode::ALREADY_EXISTS, "rank 0 is already registered");
  expect_status(reg(nonce, 78, &other), grpc::StatusCode::ALREADY_EXISTS, "rank 0 is already registered");
  expect_status(reg("", 77, &other), grpc::StatusCode::ALREADY_EXISTS, "rank 0 is already registered");
  EXPECT_TRUE(other.session().empty());
  EXPECT_EQ(server.status().registered(), 1);
}

// "send heartbeats for a frozen rank, which hides it from the deadline".
TEST_F(Credentials, NobodyHeartbeatsForAnotherRank) {
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  expect_status(heartbeat(token_, 1, 99), grpc::StatusCode::PERMISSION_DENIED, "Heartbeat needs the session");
  expect_status(heartbeat(secret_, 1, 99), grpc::StatusCode::PERMISSION_DENIED, "Heartbeat needs the session");
  expect_status(heartbeat(session_[0], 1, 99), grpc::StatusCode::PERMISSION_DENIED,
                "Heartbeat for rank 1 carries the session credential of rank 0");
  const proto::JobStatus s = server_->status();
  EXPECT_EQ(s.ranks(1).metrics().step(), 0);
  EXPECT_GE(s.ranks(1).since_heartbeat_s(), 0.25) << "a refused heartbeat must not refresh the rank";
  EXPECT_TRUE(heartbeat(session_[1], 1, 5).ok());
  EXPECT_EQ(server_->status().ranks(1).metrics().step(), 5);
}

TEST_F(Credentials, WorkerCredentialsCannotControlAndUserCannotDriveThePhases) {
  for (const std::string& c : {secret_, session_[0], session_[1]})
    expect_status(control(c, proto::ControlRequest::STOP), grpc::StatusCode::PERMISSION_DENIED,
                  "Control needs the user token");
  expect_status(next_phases(token_, 0, 2), grpc::StatusCode::PERMISSION_DENIED, "NextPhases needs the session");
  expect_status(next_phases(session_[1], 0, 2), grpc::StatusCode::PERMISSION_DENIED, "for rank 0");
  const proto::JobStatus s = server_->status();
  EXPECT_EQ(s.pending_size(), 0);
  EXPECT_EQ(s.phase(), proto::TRAIN);
  EXPECT_TRUE(control(token_, proto::ControlRequest::STATUS).ok());
}

// "report finished=true: after that every ctl command is refused".
TEST_F(Credentials, NoFakeFinish) {
  proto::PhaseReport fin = phase_report(1, proto::STOP, small_job().epochs());
  fin.set_finished(true);
  expect_status(report(token_, fin), grpc::StatusCode::PERMISSION_DENIED, "ReportPhase needs the session");
  fin.set_rank(1);
  expect_status(report(session_[0], fin), grpc::StatusCode::PERMISSION_DENIED, "for rank 1");
  fin.set_rank(0);
  expect_status(report(session_[1], fin), grpc::StatusCode::PERMISSION_DENIED, "for rank 0");
  // Rank 0 itself, before the last epoch's plan: INVALID_ARGUMENT naming the field.
  expect_status(report(session_[0], fin), grpc::StatusCode::INVALID_ARGUMENT, "finished is true");
  EXPECT_FALSE(server_->status().finished());
  EXPECT_TRUE(control(token_, proto::ControlRequest::EVAL).ok()) << "ctl commands still work";
}

// "report a phase id of 2^62, which kills the job at rank 0's next report".
TEST_F(Credentials, HugePhaseIdRefusedAndTheJobGoesOn) {
  ASSERT_TRUE(next_phases(session_[0], 0, 2).ok());  // eval_every 2: EVAL planned
  proto::PhaseReport huge = phase_report(uint64_t{1} << 62, proto::EVAL, 2);
  expect_status(report(token_, huge), grpc::StatusCode::PERMISSION_DENIED, "ReportPhase needs the session");
  expect_status(report(session_[0], huge), grpc::StatusCode::INVALID_ARGUMENT, "phase_id 4611686018427387904");
  EXPECT_EQ(server_->status().phase_id(), 0u);
  // Rank 0's genuine report comes through.
  EXPECT_TRUE(report(session_[0], phase_report(3, proto::EVAL, 2)).ok());
  EXPECT_EQ(server_->status().phase_id(), 3u);
}

// "report a fake eval with accuracy 0.999, which the final summary then prints as the job's result".
TEST_F(Credentials, NoFakeEval) {
  proto::PhaseReport fake = phase_report(1, proto::EVAL, 1);
  fake.set_test_accuracy(0.999);
  expect_status(report(token_, fake), grpc::StatusCode::PERMISSION_DENIED, "ReportPhase needs the session");
  expect_status(report(session_[0], fake), grpc::StatusCode::INVALID_ARGUMENT, "kind EVAL with directive_id 0 was not planned");
  ASSERT_TRUE(next_phases(session_[0], 0, 2).ok());
  fake.set_epoch(2);
  fake.set_test_accuracy(1.5);
  expect_status(report(session_[0], fake), grpc::StatusCode::INVALID_ARGUMENT, "test_accuracy 1.5");
  fake.set_test_accuracy(0.9);
  fake.set_test_loss(std::nan(""));
  expect_status(report(session_[0], fake), grpc::StatusCode::INVALID_ARGUMENT, "test_loss nan");
  const proto::JobStatus s = server_->status();
  EXPECT_EQ(s.history_size(), 0);
  EXPECT_EQ(s.last_test_accuracy(), 0);
}

TEST(CredentialOptions, ServerNeedsTwoDifferentCredentials) {
  const std::string token = new_token();
  ServerOptions o = server_options(token);
  o.worker_secret = token + "\n";  // the same once trimmed
  try {
    CoordinatorServer s(small_job(), 1, o);
    ADD_FAILURE() << "a server ran with the worker secret equal to the user token";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("the worker secret equals the user token"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find(token), std::string::npos) << "the token was echoed: " << e.what();
  }
  o.worker_secret.clear();
  EXPECT_THROW(CoordinatorServer(small_job(), 1, o), Error);
}

}  // namespace
}  // namespace lockstep
