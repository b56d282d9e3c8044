// The Watch stream over 127.0.0.1: the first STATUS, then every change in the order it happened
// (registrations, directives, pause and resume, phases planned and reported), FINISHED last with
// the result the server was given; periodic STATUS; the user token only; the limit of watchers
// (RESOURCE_EXHAUSTED, and other RPCs still answer); a server that stops with a watcher connected
// ends it (UNAVAILABLE) without hanging; a watcher that comes after the end still gets FINISHED.
#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "tests/control/control_test_util.h"

namespace lockstep {
namespace {

using proto::WatchEvent;
using testing::client_options;
using testing::server_options;
using testing::small_job;
using testing::Stopwatch;

constexpr int kWorld = 2;
const std::string kToken = new_token();
const std::string kSecret = testing::worker_secret_for(kToken);

// A Watch on its own thread, collecting the events and how the stream ended. Its destructor
// cancels a stream still open, so a failed assertion never leaves the test waiting.
class Watcher {
 public:
  Watcher(const CoordinatorServer& s, double interval_s = 3600) : stub_(testing::raw_stub(s.address())) {
    ctx_.AddMetadata("lockstep-token", kToken);
    thread_ = std::thread([this, interval_s] {
      proto::WatchRequest req;
      req.set_status_interval_s(interval_s);
      auto reader = stub_->Watch(&ctx_, req);
      for (WatchEvent e; reader->Read(&e);) {
        std::lock_guard<std::mutex> lock(mu_);
        events_.push_back(e);
        cv_.notify_all();
        if (stop_) ctx_.TryCancel();
      }
      const grpc::Status st = reader->Finish();
      std::lock_guard<std::mutex> lock(mu_);
      error_code_ = static_cast<int>(st.error_code());
      error_ = st.error_message();
      ended_ = true;
      cv_.notify_all();
    });
  }
  ~Watcher() {
    ctx_.TryCancel();
    if (thread_.joinable()) thread_.join();
  }
  // Waits until n events arrived (or the stream ended); the events so far.
  std::vector<WatchEvent> wait_events(size_t n, double timeout_s = 10) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::duration<double>(timeout_s), [&] { return events_.size() >= n || ended_; });
    return events_;
  }
  bool wait_ended(double timeout_s) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::duration<double>(timeout_s), [&] { return ended_; });
  }
  void stop_after_next_event() {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  int error_code() {
    std::lock_guard<std::mutex> lock(mu_);
    return error_code_;
  }
  std::string error() {
    std::lock_guard<std::mutex> lock(mu_);
    return error_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<WatchEvent> events_;
  bool ended_ = false, stop_ = false;
  int error_code_ = 0;
  std::string error_;
  std::unique_ptr<proto::Coordinator::Stub> stub_;
  grpc::ClientContext ctx_;
  std::thread thread_;
};

proto::PhaseReport report(uint64_t phase_id, proto::PhaseKind kind, int64_t epoch, uint64_t directive = 0) {
  proto::PhaseReport r;
  r.set_rank(0);
  r.set_phase_id(phase_id);
  r.set_kind(kind);
  r.set_epoch(epoch);
  r.set_step(10 * epoch);
  r.set_directive_id(directive);
  return r;
}

std::vector<std::unique_ptr<CoordinatorClient>> register_all(const CoordinatorServer& server) {
  std::vector<std::unique_ptr<CoordinatorClient>> ranks;
  for (int r = 0; r < kWorld; ++r) {
    ranks.push_back(std::make_unique<CoordinatorClient>(client_options(server, kSecret)));
    ranks.back()->register_worker(testing::register_request(r, kWorld));
  }
  return ranks;
}

TEST(Watch, EventsInOrderThenFinishedWithTheResult) {
  CoordinatorServer server(small_job(/*epochs=*/4), kWorld, server_options(kToken));
  Watcher w(server);
  ASSERT_EQ(w.wait_events(1).size(), 1u);  // the first STATUS: subscribed
  auto ranks = register_all(server);
  CoordinatorClient ctl(client_options(server, kToken));
  const uint64_t eval_id = ctl.control(proto::ControlRequest::EVAL).directive_id();
  proto::PhaseReport ev = report(1, proto::EVAL, 1, eval_id);
  ev.set_test_loss(0.75);
  ev.set_test_accuracy(0.5);
  proto::TopKAccuracy& top5 = *ev.add_top_k_accuracy();
  top5.set_k(5);
  top5.set_accuracy(0.875);
  ranks[0]->report_phase(ev);
  ctl.control(proto::ControlRequest::PAUSE);
  ctl.control(proto::ControlRequest::RESUME);
  proto::NextPhasesRequest np;
  np.set_rank(0);
  np.set_epoch(4);
  ASSERT_EQ(ranks[0]->next_phases(np).phases_size(), 2);  // the last epoch: EVAL, CHECKPOINT
  ranks[0]->report_phase(report(2, proto::EVAL, 4));
  proto::PhaseReport ck = report(3, proto::CHECKPOINT, 4);
  ck.set_checkpoint("/run/checkpoints/ckpt-40");
  ranks[0]->report_phase(ck);
  proto::PhaseReport stop = report(4, proto::STOP, 4);
  stop.set_finished(true);
  ranks[0]->report_phase(stop);
  const proto::JobResult result = server.result(/*exit_status=*/0);
  Stopwatch t;
  server.finish(result);
  EXPECT_LT(t.seconds(), 1.5) << "finish() waits for a watcher that was sent FINISHED";
  ASSERT_TRUE(w.wait_ended(5));
  EXPECT_EQ(w.error_code(), 0) << w.error();
  EXPECT_EQ(server.watchers(), 0);

  const std::vector<WatchEvent> got = w.wait_events(100, 0);
  const std::vector<WatchEvent::Kind> want = {
      WatchEvent::STATUS,   WatchEvent::RANK_REGISTERED, WatchEvent::RANK_REGISTERED, WatchEvent::DIRECTIVE,
      WatchEvent::PHASE_REPORTED,  // the directed EVAL
      WatchEvent::DIRECTIVE, WatchEvent::PAUSED, WatchEvent::PHASE,  // PAUSE
      WatchEvent::RESUMED, WatchEvent::PHASE,                        // RESUME: TRAIN again
      WatchEvent::PHASE,                                             // epoch 4 ended: EVAL, CHECKPOINT planned
      WatchEvent::PHASE_REPORTED, WatchEvent::PHASE,                 // EVAL ran: CHECKPOINT next
      WatchEvent::PHASE_REPORTED, WatchEvent::PHASE,                 // CHECKPOINT ran: TRAIN
      WatchEvent::PHASE_REPORTED, WatchEvent::PHASE,                 // STOP ran: STOP
      WatchEvent::FINISHED};
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].seq(), i + 1);
    EXPECT_EQ(got[i].kind(), want[i]) << "event " << i + 1 << ": " << WatchEvent::Kind_Name(got[i].kind()) << " "
                                      << got[i].message();
    EXPECT_FALSE(got[i].message().empty()) << "event " << i + 1;
    EXPECT_GT(got[i].time_unix_s(), 1.7e9) << "event " << i + 1;
    if (i > 0) EXPECT_GE(got[i].time_unix_s(), got[i - 1].time_unix_s());
  }
  EXPECT_EQ(got[0].status().registered(), 0);
  EXPECT_EQ(got[0].status().job(), "control-test");
  EXPECT_EQ(got[1].rank().rank(), 0);
  EXPECT_EQ(got[2].rank().host(), "host1");
  EXPECT_EQ(got[2].rank().pid(), 1001);
  EXPECT_EQ(got[3].directive().id(), eval_id);
  EXPECT_EQ(got[3].directive().kind(), proto::EVAL);
  EXPECT_DOUBLE_EQ(got[4].report().test_accuracy(), 0.5);
  ASSERT_EQ(got[4].report().top_k_accuracy_size(), 1);
  EXPECT_DOUBLE_EQ(got[4].report().top_k_accuracy(0).accuracy(), 0.875);
  EXPECT_EQ(got[5].directive().kind(), proto::PAUSE);
  EXPECT_EQ(got[6].directive().kind(), proto::PAUSE);
  EXPECT_EQ(got[7].phase(), proto::PAUSE);
  EXPECT_EQ(got[9].phase(), proto::TRAIN);
  EXPECT_EQ(got[10].epoch(), 4);
  ASSERT_EQ(got[10].planned_size(), 2);
  EXPECT_EQ(got[10].planned(0), proto::EVAL);
  EXPECT_EQ(got[10].planned(1), proto::CHECKPOINT);
  EXPECT_EQ(got[12].phase(), proto::CHECKPOINT);
  EXPECT_EQ(got[13].report().checkpoint(), "/run/checkpoints/ckpt-40");
  EXPECT_TRUE(got[15].report().finished());
  EXPECT_EQ(got[16].phase(), proto::STOP);
  const proto::JobResult& r = got.back().result();
  EXPECT_EQ(r.SerializeAsString(), result.SerializeAsString());
  EXPECT_TRUE(r.finished());
  EXPECT_TRUE(r.complete());
  EXPECT_EQ(r.epoch(), 4);
  EXPECT_EQ(r.step(), 40);
  EXPECT_EQ(r.last_checkpoint(), "/run/checkpoints/ckpt-40");
  EXPECT_DOUBLE_EQ(r.last_test_accuracy(), 0.0);  // the planned EVAL reported none: the newest counts
  // The status keeps the result (and the top-k of the newest EVAL) until the server goes.
  const proto::JobStatus s = ctl.control(proto::ControlRequest::STATUS).status();
  EXPECT_TRUE(s.has_result());
  EXPECT_EQ(s.result().exit_status(), 0);
  EXPECT_EQ(s.last_top_k_accuracy_size(), 0);
}

TEST(Watch, TopKOfTheNewestEvalInTheStatus) {
  CoordinatorServer server(small_job(), kWorld, server_options(kToken));
  auto ranks = register_all(server);
  CoordinatorClient ctl(client_options(server, kToken));
  const uint64_t id = ctl.control(proto::ControlRequest::EVAL).directive_id();
  proto::PhaseReport ev = report(1, proto::EVAL, 1, id);
  ev.set_test_accuracy(0.5);
  for (int k : {1, 5}) {
    proto::TopKAccuracy& t = *ev.add_top_k_accuracy();
    t.set_k(k);
    t.set_accuracy(k == 1 ? 0.5 : 0.9);
  }
  ranks[0]->report_phase(ev);
  const proto::JobStatus s = ctl.control(proto::ControlRequest::STATUS).status();
  ASSERT_EQ(s.last_top_k_accuracy_size(), 2);
  EXPECT_EQ(s.last_top_k_accuracy(1).k(), 5);
  EXPECT_DOUBLE_EQ(s.last_top_k_accuracy(1).accuracy(), 0.9);
  // An accuracy outside [0, 1] is refused, naming the field, and changes nothing.
  const uint64_t id2 = ctl.control(proto::ControlRequest::EVAL).directive_id();
  proto::PhaseReport bad = report(2, proto::EVAL, 1, id2);
  proto::TopKAccuracy& t = *bad.add_top_k_accuracy();
  t.set_k(5);
  t.set_accuracy(1.5);
  try {
    ranks[0]->report_phase(bad);
    ADD_FAILURE() << "a top-k accuracy of 1.5 was taken";
  } catch (const RpcError& e) {
    EXPECT_EQ(e.code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
    EXPECT_NE(std::string(e.what()).find("top_k_accuracy k=5 accuracy 1.5"), std::string::npos) << e.what();
  }
  EXPECT_EQ(ctl.control(proto::ControlRequest::STATUS).status().history_size(), 1);
}

TEST(Watch, PeriodicStatusAndItsBounds) {
  CoordinatorServer server(small_job(), kWorld, server_options(kToken));
  {
    Watcher w(server, /*interval_s=*/0.1);
    Stopwatch t;
    const auto got = w.wait_events(6, 5);
    ASSERT_EQ(got.size(), 6u);
    EXPECT_GE(t.seconds(), 0.4);  // the first at once, then one every 0.1 s
    for (const WatchEvent& e : got) EXPECT_EQ(e.kind(), WatchEvent::STATUS);
    w.stop_after_next_event();
  }
  for (double bad : {0.05, -1.0, 4000.0}) {
    auto stub = testing::raw_stub(server.address());
    grpc::ClientContext ctx;
    ctx.AddMetadata("lockstep-token", kToken);
    testing::set_deadline(ctx, 5);
    proto::WatchRequest req;
    req.set_status_interval_s(bad);
    auto reader = stub->Watch(&ctx, req);
    WatchEvent e;
    EXPECT_FALSE(reader->Read(&e)) << "interval " << bad;
    const grpc::Status s = reader->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad;
    EXPECT_NE(s.error_message().find("status_interval_s"), std::string::npos) << s.error_message();
  }
}

TEST(Watch, OnlyTheUserTokenOpensIt) {
  CoordinatorServer server(small_job(), kWorld, server_options(kToken));
  CoordinatorClient rank0(client_options(server, kSecret));
  rank0.register_worker(testing::register_request(0, kWorld));
  // None, a wrong one, the worker secret: refused before any event.
  const std::vector<std::pair<std::string, grpc::StatusCode>> cases = {
      {"", grpc::StatusCode::UNAUTHENTICATED},
      {std::string(64, 'a'), grpc::StatusCode::UNAUTHENTICATED},
      {kSecret, grpc::StatusCode::PERMISSION_DENIED}};
  for (const auto& [token, code] : cases) {
    auto stub = testing::raw_stub(server.address());
    grpc::ClientContext ctx;
    if (!token.empty()) ctx.AddMetadata("lockstep-token", token);
    testing::set_deadline(ctx, 5);
    auto reader = stub->Watch(&ctx, proto::WatchRequest());
    WatchEvent e;
    EXPECT_FALSE(reader->Read(&e)) << "an event reached a caller without the user token";
    EXPECT_EQ(reader->Finish().error_code(), code) << (token.empty() ? "no token" : token.substr(0, 8));
  }
  EXPECT_EQ(server.watchers(), 0);
}

TEST(Watch, LimitIsResourceExhaustedAndOtherCallsStillAnswer) {
  CoordinatorServer server(small_job(), kWorld, server_options(kToken));  // the default limit, 16
  auto a = std::make_unique<Watcher>(server);
  std::vector<std::unique_ptr<Watcher>> others;
  for (int i = 1; i < 16; ++i) others.push_back(std::make_unique<Watcher>(server));
  ASSERT_EQ(a->wait_events(1).size(), 1u);
  for (auto& w : others) ASSERT_EQ(w->wait_events(1).size(), 1u);
  EXPECT_EQ(server.watchers(), 16);
  {
    Watcher c(server);
    ASSERT_TRUE(c.wait_ended(5));
    EXPECT_EQ(c.error_code(), static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED));
    EXPECT_NE(c.error().find("max_watchers 16"), std::string::npos) << c.error();
  }
  // Sixteen streams held open: registration, heartbeats and Control answer at once.
  Stopwatch t;
  auto ranks = register_all(server);
  ranks[1]->heartbeat_now(1, proto::StepMetrics());
  CoordinatorClient ctl(client_options(server, kToken));
  EXPECT_EQ(ctl.control(proto::ControlRequest::STATUS).status().registered(), kWorld);
  EXPECT_LT(t.seconds(), 3.0);  // blocked calls would wait for ever; 3 s leaves room for a sanitizer build
  // One leaves: a new one is served.
  a->stop_after_next_event();
  ctl.control(proto::ControlRequest::EVAL);  // an event, so `a` sees it and cancels
  ASSERT_TRUE(a->wait_ended(5));
  a.reset();
  for (int i = 0; i < 50 && server.watchers() > 15; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  Watcher d(server);
  EXPECT_EQ(d.wait_events(1).size(), 1u) << d.error();
  EXPECT_EQ(d.error_code(), 0);
  server.finish(server.result(0));
}

TEST(Watch, ServerStopsWithAWatcherConnected) {
  auto server = std::make_unique<CoordinatorServer>(small_job(), kWorld, server_options(kToken));
  Watcher w(*server);
  ASSERT_EQ(w.wait_events(1).size(), 1u);
  Stopwatch t;
  server.reset();  // no finish(): the result is unknown
  EXPECT_LT(t.seconds(), 1.5) << "the server's stop waited on the watcher";
  ASSERT_TRUE(w.wait_ended(5));
  EXPECT_EQ(w.error_code(), static_cast<int>(grpc::StatusCode::UNAVAILABLE)) << w.error();
}

TEST(Watch, AWatcherAfterTheEndGetsFinished) {
  CoordinatorServer server(small_job(), kWorld, server_options(kToken));
  server.finish(server.result(3, "stopped"), /*wait_s=*/0);
  Watcher w(server);
  ASSERT_TRUE(w.wait_ended(5));
  const auto got = w.wait_events(2, 0);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].kind(), WatchEvent::STATUS);
  EXPECT_EQ(got[0].status().result().exit_status(), 3);
  EXPECT_EQ(got[1].kind(), WatchEvent::FINISHED);
  EXPECT_EQ(got[1].result().failure(), "stopped");
  EXPECT_EQ(w.error_code(), 0);
}

TEST(Watch, ASilentRankIsLostAndARestartIsAnAttempt) {
  ServerOptions o = server_options(kToken);
  o.coordinator_timeout_s = 0.3;
  CoordinatorServer server(small_job(), kWorld, o);
  auto ranks = register_all(server);
  Watcher w(server, /*interval_s=*/0.1);
  ranks[0]->start_heartbeats(0, 0.05, 5, [] { return proto::StepMetrics(); }, nullptr);
  // The first of a kind among the events, waiting for more (a STATUS every 0.1 s) up to 10 s.
  const auto first_of = [&](WatchEvent::Kind kind) -> std::optional<WatchEvent> {
    std::vector<WatchEvent> got;
    for (Stopwatch t; t.seconds() < 10;) {
      got = w.wait_events(got.size() + 1, 1);
      for (const WatchEvent& e : got)
        if (e.kind() == kind && (kind != WatchEvent::RANK_LOST || e.rank().rank() == 1)) return e;
    }
    return std::nullopt;
  };
  const std::optional<WatchEvent> lost = first_of(WatchEvent::RANK_LOST);
  ASSERT_TRUE(lost) << "no RANK_LOST for rank 1 within 10 s";
  EXPECT_NE(lost->message().find("rank 1 (pid 1001 on host1)"), std::string::npos) << lost->message();
  ranks[0]->stop_heartbeats();
  server.note_failure("rank 1 (pid 1001 on host1) exited unexpectedly");
  server.new_attempt(/*resume=*/true);
  const std::optional<WatchEvent> failed = first_of(WatchEvent::ATTEMPT_FAILED);
  const std::optional<WatchEvent> attempt = first_of(WatchEvent::ATTEMPT);
  ASSERT_TRUE(failed && attempt);
  EXPECT_LT(failed->seq(), attempt->seq());
  EXPECT_EQ(failed->attempt(), 0u);
  EXPECT_EQ(attempt->attempt(), 1u);
  EXPECT_NE(failed->message().find("rank 1 (pid 1001 on host1) exited"), std::string::npos) << failed->message();
  server.finish(server.result(1, "restarts spent"));
  ASSERT_TRUE(w.wait_ended(5));
}

}  // namespace
}  // namespace lockstep
