// What the coordinator knows about its job, shared by the RPC handlers and the in-process API
// (CoordinatorServer): registrations, session credentials and metrics per rank, the phase state
// machine, the last eval and checkpoint. One mutex guards it all; every method takes it. Methods
// throw Error for a request the job cannot honour (RankTaken for a second Register of a rank); the
// service turns that into a gRPC status.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>

#include "launcher/coordinator/phase_machine.h"
#include "launcher/coordinator/step_rate.h"
#include "launcher/coordinator/stragglers.h"
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

 private:
  using Clock = std::chrono::steady_clock;
  struct Rank {
    proto::RankStatus info;  // since_heartbeat_s and the rates filled in by status()
    Clock::time_point last_seen;
    std::string session;     // this attempt's credential of the rank
    std::string nonce;       // of the registration, so its retry gets the same session
    StepRate rate;
  };
  proto::JobStatus status_locked() const;
  void seen_locked(Rank& x, const proto::StepMetrics& m);  // a heartbeat's metrics, now
  proto::HeartbeatReply heartbeat_reply_locked() const;
  proto::RegisterReply register_reply(const std::string& session) const;  // mu_ held

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
  std::string last_checkpoint_;
};

}  // namespace lockstep
