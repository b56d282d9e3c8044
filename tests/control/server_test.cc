// Coordinator server and client in-process over 127.0.0.1: registration, heartbeat metrics in the
// status, directives delivered to every rank and removed by rank 0's report, plan over RPC,
// argument checks, restarts.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "launcher/coordinator/phase_machine.h"
#include "tests/control/control_test_util.h"

namespace lockstep {
namespace {

using testing::client_options;
using testing::server_options;
using testing::small_job;

constexpr int kWorld = 2;
const std::string kToken = new_token();
const std::string kSecret = testing::worker_secret_for(kToken);

proto::RegisterRequest reg(int rank, int world = kWorld) { return testing::register_request(rank, world); }

proto::StepMetrics metrics_of(int rank) {  // distinct per rank, so a mix-up shows
  proto::StepMetrics m;
  m.set_epoch(1);
  m.set_step(10 + rank);
  m.set_loss(0.5 + rank);
  m.set_samples_per_sec(100.0 * (rank + 1));
  return m;
}

TEST(CoordinatorServer, RegisterHeartbeatDirectiveReport) {
  CoordinatorServer server(small_job(), kWorld, server_options(kToken));
  std::vector<std::unique_ptr<CoordinatorClient>> ranks;
  for (int r = 0; r < kWorld; ++r) {
    ranks.push_back(std::make_unique<CoordinatorClient>(client_options(server, kSecret)));
    proto::RegisterReply reply = ranks[r]->register_worker(reg(r));
    EXPECT_EQ(reply.job().name(), "control-test");
    EXPECT_EQ(reply.run_dir(), "/tmp/lockstep-control-test");
    EXPECT_EQ(reply.attempt(), 0u);
    EXPECT_DOUBLE_EQ(reply.heartbeat_interval_s(), 0.5);
  }
  server.wait_registered(kWorld, 5);
  for (int r = 0; r < kWorld; ++r) ranks[r]->heartbeat_now(r, metrics_of(r));

  proto::JobStatus s = server.status();
  EXPECT_EQ(s.registered(), kWorld);
  ASSERT_EQ(s.ranks_size(), kWorld);
  for (int r = 0; r < kWorld; ++r) {
    EXPECT_EQ(s.ranks(r).rank(), r);
    EXPECT_EQ(s.ranks(r).host(), "host" + std::to_string(r));
    EXPECT_EQ(s.ranks(r).pid(), 1000 + r);
    EXPECT_EQ(s.ranks(r).metrics().step(), metrics_of(r).step());
    EXPECT_DOUBLE_EQ(s.ranks(r).metrics().samples_per_sec(), metrics_of(r).samples_per_sec());
    EXPECT_LT(s.ranks(r).since_heartbeat_s(), 5.0);
  }

  // ctl EVAL over the wire: the directive reaches both ranks' heartbeats.
  CoordinatorClient ctl(client_options(server, kToken));
  const uint64_t id = ctl.control(proto::ControlRequest::EVAL).directive_id();
  EXPECT_GT(id, 0u);
  for (int r = 0; r < kWorld; ++r) {
    proto::HeartbeatReply h = ranks[r]->heartbeat_now(r, metrics_of(r));
    ASSERT_EQ(h.pending_size(), 1) << "rank " << r;
    EXPECT_EQ(h.pending(0).id(), id);
    EXPECT_EQ(h.pending(0).kind(), proto::EVAL);
    EXPECT_EQ(ranks[r]->last_heartbeat().pending_size(), 1);
  }

  proto::PhaseReport rep;
  rep.set_rank(0);
  rep.set_phase_id(1);
  rep.set_kind(proto::EVAL);
  rep.set_directive_id(id);
  rep.set_test_accuracy(0.875);
  rep.set_test_loss(0.25);
  ranks[0]->report_phase(rep);
  for (int r = 0; r < kWorld; ++r) EXPECT_EQ(ranks[r]->heartbeat_now(r, metrics_of(r)).pending_size(), 0);
  s = ctl.control(proto::ControlRequest::STATUS).status();
  ASSERT_EQ(s.history_size(), 1);
  EXPECT_EQ(s.history(0).directive_id(), id);
  EXPECT_DOUBLE_EQ(s.last_test_accuracy(), 0.875);
  EXPECT_EQ(s.phase_id(), 1u);

  // Only rank 0 reports phases.
  rep.set_rank(1);
  rep.set_phase_id(2);
  rep.set_directive_id(0);
  try {
    ranks[1]->report_phase(rep);
    ADD_FAILURE() << "a report from rank 1 was accepted";
  } catch (const RpcError& e) {
    EXPECT_EQ(e.code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT)) << e.what();
    EXPECT_NE(std::string(e.what()).find("only rank 0 reports phases"), std::string::npos) << e.what();
  }
}

TEST(CoordinatorServer, RegisterRejectsBadRankAndWorld) {
  CoordinatorServer server(small_job(), kWorld, server_options(kToken));
  CoordinatorClient c(client_options(server, kSecret));
  for (auto [rank, world] : {std::pair{kWorld, kWorld}, {-1, kWorld}, {0, kWorld + 1}}) {
    try {
      c.register_worker(reg(rank, world), 1);
      ADD_FAILURE() << "rank " << rank << " world " << world << " registered";
    } catch (const RpcError& e) {
      EXPECT_EQ(e.code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT)) << e.what();
      const std::string w = e.what();
      EXPECT_NE(w.find("rank " + std::to_string(rank)), std::string::npos) << w;
      EXPECT_NE(w.find(std::to_string(kWorld)), std::string::npos) << w;
      EXPECT_NE(w.find(server.address()), std::string::npos) << w;
    }
  }
  EXPECT_EQ(server.status().registered(), 0);
}

TEST(CoordinatorServer, NextPhasesFollowsPlan) {
  const proto::JobSpec job = small_job(6);
  CoordinatorServer server(job, 1, server_options(kToken));
  CoordinatorClient c(client_options(server, kSecret));
  c.register_worker(reg(0, 1));
  PhaseMachine reference(job.phases(), job.epochs());
  for (int64_t e = 1; e <= 6; ++e) {
    proto::NextPhasesRequest req;
    req.set_rank(0);
    req.set_epoch(e);
    proto::NextPhasesReply reply = c.next_phases(req);
    std::vector<proto::PhaseKind> got;
    for (int k : reply.phases()) got.push_back(static_cast<proto::PhaseKind>(k));
    EXPECT_EQ(got, reference.next_phases(e)) << "epoch " << e;
  }
  EXPECT_EQ(server.status().phase(), proto::EVAL) << "epoch 6 planned EVAL, CHECKPOINT; none reported yet";
}

TEST(CoordinatorServer, HeartbeatThreadDeliversMetricsAndDirectives) {
  CoordinatorServer server(small_job(), 1, server_options(kToken));
  CoordinatorClient c(client_options(server, kSecret));
  c.register_worker(reg(0, 1));
  std::atomic<int64_t> step{0};
  c.start_heartbeats(0, 0.05, 5, [&] {
    proto::StepMetrics m;
    m.set_step(++step);
    return m;
  }, [](const std::string& m) { ADD_FAILURE() << "lost: " << m; });
  const uint64_t id = server.request(proto::ControlRequest::CHECKPOINT);
  testing::Stopwatch w;
  while (w.seconds() < 5 && (c.last_heartbeat().pending_size() == 0 || server.status().ranks(0).metrics().step() < 3))
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_EQ(c.last_heartbeat().pending_size(), 1);
  EXPECT_EQ(c.last_heartbeat().pending(0).id(), id);
  EXPECT_GE(server.status().ranks(0).metrics().step(), 3);
  c.stop_heartbeats();
}

TEST(CoordinatorServer, WaitRegisteredNamesMissingRanksAndNewAttemptClears) {
  CoordinatorServer server(small_job(), 3, server_options(kToken));
  CoordinatorClient c(client_options(server, kSecret));
  c.register_worker(reg(1, 3));
  try {
    server.wait_registered(3, 0.2);
    ADD_FAILURE() << "wait_registered returned with 1 of 3";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing ranks: 0, 2"), std::string::npos) << e.what();
  }
  server.new_attempt(true);
  EXPECT_EQ(server.status().registered(), 0);
  EXPECT_EQ(server.status().attempt(), 1u);
  CoordinatorClient again(client_options(server, kSecret));  // the restarted rank 1
  proto::RegisterReply r = again.register_worker(reg(1, 3));
  EXPECT_EQ(r.attempt(), 1u);
  EXPECT_TRUE(r.resume());
}

TEST(CoordinatorServer, PortInUseNamesAddress) {
  CoordinatorServer first(small_job(), 1, server_options(kToken));
  ServerOptions o = server_options(kToken);
  o.port = first.port();
  try {
    CoordinatorServer second(small_job(), 1, o);
    ADD_FAILURE() << "a second server listened on " << first.address();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(first.address()), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lockstep
