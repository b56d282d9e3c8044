// What the coordinator knows about its job, shared by the RPC handlers and the in-process API
// (CoordinatorServer): registrations, session credentials and metrics per rank, the phase state
// machine, the last eval and checkpoint, the final result. One mutex guards it all; every method
// takes it. Every change a Watch reports is published to the WatchHub under that mutex, in the order
// it happened. Methods throw Error for a request the job cannot honour (RankTaken for a second
// Register of a rank); the service turns that into a gRPC status.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "launcher/coordinator/phase_machine.h"
#include "launcher/coordinator/step_rate.h"
#include "launcher/coordinator/stragglers.h"
#include "launcher/coordinator/watch_hub.h"
#include "runtime/check.h"
#include "launcher/coordinator/server.h"
#include "proto/coordinator.pb.h"

namespace lockstep {

// Register for a rank already registered in this attempt (the service answers ALREADY_EXISTS).
class RankTaken : public Error {
 public:
  using Error::Error;
};

class JobState {
 public:
  JobState(proto::JobSpec job, int world_size, const ServerOptions& o);

  int world_size() const {
    std::lock_guard<std::mutex> lock(mu_);
    return world_;
  }
  // Registers the rank for this attempt and hands it a fresh session credential
  // (RegisterReply.session). Throws Error for a bad rank, world size or pid, RankTaken when the rank
  // is registered already (the first registration stays) unless this is a retry of that
  // registration (same non-empty nonce, same pid), which gets the same reply.
  proto::RegisterReply register_rank(const proto::RegisterRequest& r);
  // The rank whose session credential of this attempt `credential` is; -1 for none. Constant time
  // in the credential's secret part.
  int session_rank(std::string_view credential) const;
  proto::HeartbeatReply heartbeat(const proto::HeartbeatRequest& r);
  // Per-node aggregation (coordinator.proto): each entry taken as its rank's Heartbeat when its
  // session credential is that rank's (constant time), else refused alone; one lock for the batch.
  // Throws Error for more than kMaxNodeEntries entries.
  proto::NodeHeartbeatReply node_heartbeat(const proto::NodeHeartbeatRequest& r);
  static constexpr int kMaxNodeEntries = 1024;
  proto::NextPhasesReply next_phases(const proto::NextPhasesRequest& r);
  void report(const proto::PhaseReport& r);
  proto::ControlReply control(proto::ControlRequest::Command c);
  proto::JobStatus status() const;
  // world_size > 0: the next attempt runs on that many ranks (launch --min-ranks).
  void new_attempt(bool resume, int world_size = 0);
  void wait_registered(int n, double timeout_s);

  // Watch (coordinator.proto): a new watcher whose first event is the current status. Throws
  // WatchLimit at the limit of watchers (ServerOptions::max_watchers).
  std::shared_ptr<WatchHub::Watcher> watch();
  // A STATUS event for one watcher (its periodic one); first publishes RANK_LOST for every rank
  // silent past the heartbeat timeout since the last check.
  void push_status(WatchHub::Watcher& w);
  WatchHub& hub() { return hub_; }
  // The launcher saw this attempt fail (ATTEMPT_FAILED; `why` names the rank when known).
  void note_failure(const std::string& why);
  // The job's result as of now, with the launcher's exit status and failure (coordinator.proto).
  proto::JobResult result(int exit_status, const std::string& failure) const;
  // Keeps `r` in the status (JobStatus.result) and publishes it as FINISHED, the last event.
  void finish(const proto::JobResult& r);

 private:
  using Clock = std::chrono::steady_clock;
  struct Rank {
    proto::RankStatus info;  // since_heartbeat_s and the rates filled in by status()
    Clock::time_point last_seen;
    std::string session;     // this attempt's credential of the rank
    std::string nonce;       // of the registration, so its retry gets the same session
    StepRate rate;
    bool lost = false;       // RANK_LOST published; a heartbeat clears it
  };
  proto::JobStatus status_locked() const;
  void seen_locked(Rank& x, const proto::StepMetrics& m);  // a heartbeat's metrics, now
  proto::HeartbeatReply heartbeat_reply_locked() const;
  proto::RegisterReply register_reply(const std::string& session) const;  // mu_ held
  // mu_ held: an event of this kind, stamped with the time and attempt.
  proto::WatchEvent event_locked(proto::WatchEvent::Kind kind, const std::string& message) const;
  // mu_ held: PHASE / PAUSED / RESUMED for whatever changed since `state` and `paused`.
  void publish_changes_locked(proto::PhaseKind state, bool paused, const proto::Directive* pause = nullptr);
  void check_lost_locked();

  mutable std::mutex mu_;
  std::condition_variable registered_cv_;
  const proto::JobSpec job_;
  int world_;  // of this attempt
  const StragglerRule stragglers_;  // the job's control.straggler_*
  const ServerOptions opts_;  // intervals and run_dir handed out at Register
  bool resume_;
  uint32_t attempt_ = 0;
  PhaseMachine machine_;
  std::map<int, Rank> ranks_;  // registered in this attempt, by rank
  double last_test_loss_ = 0, last_test_accuracy_ = 0;
  std::vector<proto::TopKAccuracy> last_top_k_;
  std::string last_checkpoint_;
  WatchHub hub_;
  Clock::time_point last_lost_check_{};
  std::optional<proto::JobResult> result_;
};

}  // namespace lockstep
