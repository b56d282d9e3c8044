// The coordinator's job state: registrations, metrics, phases (see job_state.h).
#include "launcher/coordinator/job_state.h"

#include <algorithm>
#include <sstream>
#include <vector>

#include "launcher/coordinator/client.h"
#include "launcher/coordinator/grpc_util.h"
#include "launcher/job_file.h"
#include "runtime/check.h"

namespace lockstep {

JobState::JobState(proto::JobSpec job, int world_size, const ServerOptions& o)
    : job_(std::move(job)), world_(world_size),
      stragglers_{.factor = heartbeat_of(job_).straggler_factor,
                  .window_steps = heartbeat_of(job_).straggler_window_steps},
      opts_(o), resume_(o.resume),
      machine_(job_.phases(), job_.epochs()) {
  LOCKSTEP_FAIL_IF(world_ < 1) << "coordinator for job " << job_.name() << ": world size " << world_
                               << " must be at least 1";
}

namespace {

// "rank<R>-<64 hex digits>": the rank in clear (to find whose it is), the secret after the dash.
std::string session_for(int rank) { return "rank" + std::to_string(rank) + "-" + new_token(); }

}  // namespace

proto::RegisterReply JobState::register_rank(const proto::RegisterRequest& r) {
  LOCKSTEP_FAIL_IF(r.world_size() != world_)
      << "Register: rank " << r.rank() << " says world_size " << r.world_size() << ", but job " << job_.name()
      << " runs on " << world_ << " ranks";
  LOCKSTEP_FAIL_IF(r.rank() < 0 || r.rank() >= world_)
      << "Register: rank " << r.rank() << " is outside [0, " << world_ << ") (world_size " << r.world_size() << ")";
  LOCKSTEP_FAIL_IF(r.pid() < 1) << "Register: rank " << r.rank() << " gives pid " << r.pid()
                                << " (a process id is at least 1)";
  std::lock_guard<std::mutex> lock(mu_);
  if (ranks_.count(r.rank())) {
    const Rank& had = ranks_.at(r.rank());
    if (!r.nonce().empty() && r.pid() == had.info.pid() && grpc_util::constant_time_equal(r.nonce(), had.nonce))
      return register_reply(had.session);  // the same registration, retried
    throw RankTaken("Register: rank " + std::to_string(r.rank()) + " is already registered in attempt " +
                    std::to_string(attempt_) + " (pid " + std::to_string(had.info.pid()) + " on " +
                    had.info.host() + "); a rank registers once per attempt");
  }
  Rank& x = ranks_[r.rank()];
  x.info.set_rank(r.rank());
  x.info.set_host(r.host());
  x.info.set_pid(r.pid());
  x.last_seen = Clock::now();
  x.session = session_for(r.rank());
  x.nonce = r.nonce();
  registered_cv_.notify_all();
  return register_reply(x.session);
}

proto::RegisterReply JobState::register_reply(const std::string& session) const {
  proto::RegisterReply reply;
  *reply.mutable_job() = job_;
  reply.set_run_dir(opts_.run_dir);
  reply.set_resume(resume_);
  reply.set_heartbeat_interval_s(opts_.heartbeat_interval_s);
  reply.set_coordinator_timeout_s(opts_.coordinator_timeout_s);
  reply.set_attempt(attempt_);
  reply.set_session(session);
  return reply;
}

int JobState::session_rank(std::string_view credential) const {
  if (credential.substr(0, 4) != "rank") return -1;
  const size_t dash = credential.find('-');
  if (dash == std::string_view::npos || dash == 4 || dash > 14) return -1;
  int64_t rank = 0;
  for (char c : credential.substr(4, dash - 4)) {
    if (c < '0' || c > '9') return -1;
    rank = rank * 10 + (c - '0');
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto it = ranks_.find(static_cast<int>(rank));
  if (rank >= world_ || it == ranks_.end()) return -1;
  return grpc_util::constant_time_equal(credential, it->second.session) ? static_cast<int>(rank) : -1;
}

void JobState::seen_locked(Rank& x, const proto::StepMetrics& m) {
  *x.info.mutable_metrics() = m;
  x.last_seen = Clock::now();
  // The window starts at the first step this process ran: a resumed rank reports its resume step
  // before it has taken one, and that jump is no rate.
  if (m.step_time_s() > 0) x.rate.add(x.last_seen, m.step());
}

proto::HeartbeatReply JobState::heartbeat_reply_locked() const {
  proto::HeartbeatReply reply;
  for (const proto::Directive& d : machine_.pending()) *reply.add_pending() = d;
  reply.set_paused(machine_.paused());
  return reply;
}

proto::HeartbeatReply JobState::heartbeat(const proto::HeartbeatRequest& r) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = ranks_.find(r.rank());
  LOCKSTEP_FAIL_IF(it == ranks_.end())
      << "Heartbeat from rank " << r.rank() << ", which has not registered in attempt " << attempt_;
  seen_locked(it->second, r.metrics());
  return heartbeat_reply_locked();
}

proto::NodeHeartbeatReply JobState::node_heartbeat(const proto::NodeHeartbeatRequest& r) {
  LOCKSTEP_FAIL_IF(r.ranks_size() > kMaxNodeEntries)
      << "NodeHeartbeat from rank " << r.rank() << " carries " << r.ranks_size() << " entries; at most "
      << kMaxNodeEntries << " (one per rank of a node)";
  proto::NodeHeartbeatReply reply;
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<int> done;
  for (const proto::HeartbeatRequest& e : r.ranks()) {
    auto refuse = [&](const std::string& why) {
      proto::RankRefusal& x = *reply.add_refused();
      x.set_rank(e.rank());
      x.set_why(why);
    };
    auto it = ranks_.find(e.rank());
    if (it == ranks_.end()) {
      refuse("rank " + std::to_string(e.rank()) + " has not registered in attempt " + std::to_string(attempt_));
    } else if (!grpc_util::constant_time_equal(e.session(), it->second.session)) {
      refuse("the entry for rank " + std::to_string(e.rank()) +
             " does not carry that rank's session credential of this attempt");
    } else if (std::find(done.begin(), done.end(), e.rank()) != done.end()) {
      refuse("rank " + std::to_string(e.rank()) + " appears twice in one NodeHeartbeat");
    } else {
      seen_locked(it->second, e.metrics());
      done.push_back(e.rank());
    }
  }
  *reply.mutable_reply() = heartbeat_reply_locked();
  return reply;
}

proto::NextPhasesReply JobState::next_phases(const proto::NextPhasesRequest& r) {
  LOCKSTEP_FAIL_IF(r.epoch() < 1 || r.epoch() > job_.epochs())
      << "NextPhases: epoch " << r.epoch() << " from rank " << r.rank() << " is outside [1, " << job_.epochs()
      << "] (the job's epochs, 1-based)";
  std::lock_guard<std::mutex> lock(mu_);
  // Only rank 0 drives the phases; another rank asking learns the same plan without moving state.
  const auto phases = r.rank() == 0 ? machine_.begin_epoch_end(r.epoch()) : machine_.next_phases(r.epoch());
  proto::NextPhasesReply reply;
  for (proto::PhaseKind k : phases) reply.add_phases(k);
  return reply;
}

void JobState::report(const proto::PhaseReport& r) {
  LOCKSTEP_FAIL_IF(r.rank() != 0) << "ReportPhase from rank " << r.rank() << " (phase " << r.phase_id()
                                  << "): only rank 0 reports phases";
  std::lock_guard<std::mutex> lock(mu_);
  machine_.report(r, /*from_checkpoint=*/resume_);
  if (r.kind() == proto::EVAL) {
    last_test_loss_ = r.test_loss();
    last_test_accuracy_ = r.test_accuracy();
  }
  if (!r.checkpoint().empty()) last_checkpoint_ = r.checkpoint();
}

proto::ControlReply JobState::control(proto::ControlRequest::Command c) {
  std::lock_guard<std::mutex> lock(mu_);
  proto::ControlReply reply;
  switch (c) {
    case proto::ControlRequest::STATUS: break;
    case proto::ControlRequest::RESUME: machine_.resume(); break;
    case proto::ControlRequest::EVAL: reply.set_directive_id(machine_.enqueue(proto::EVAL)); break;
    case proto::ControlRequest::CHECKPOINT: reply.set_directive_id(machine_.enqueue(proto::CHECKPOINT)); break;
    case proto::ControlRequest::PAUSE: reply.set_directive_id(machine_.enqueue(proto::PAUSE)); break;
    case proto::ControlRequest::STOP: reply.set_directive_id(machine_.enqueue(proto::STOP)); break;
    default: LOCKSTEP_FAIL_IF(true) << "Control: unknown command " << static_cast<int>(c);
  }
  *reply.mutable_status() = status_locked();
  return reply;
}

proto::JobStatus JobState::status() const {
  std::lock_guard<std::mutex> lock(mu_);
  return status_locked();
}

proto::JobStatus JobState::status_locked() const {
  proto::JobStatus s;
  s.set_job(job_.name());
  s.set_phase(machine_.state());
  s.set_phase_id(machine_.phase_id());
  s.set_world_size(world_);
  s.set_registered(static_cast<int32_t>(ranks_.size()));
  const auto now = Clock::now();
  for (const auto& [rank, x] : ranks_) {
    proto::RankStatus& r = *s.add_ranks();
    r = x.info;
    r.set_since_heartbeat_s(std::chrono::duration<double>(now - x.last_seen).count());
    r.set_steps_per_sec(x.rate.steps_per_sec());
    // An optimizer step trains accumulate_steps global micro-batches of batch_size.
    r.set_samples_per_sec(r.steps_per_sec() * static_cast<double>(job_.batch_size()) *
                          static_cast<double>(job_.has_accumulate_steps() ? job_.accumulate_steps() : 1));
  }
  std::vector<const proto::RankStatus*> ranks;
  for (const proto::RankStatus& r : s.ranks()) ranks.push_back(&r);
  for (proto::Straggler& x : find_stragglers(ranks, stragglers_)) *s.add_stragglers() = std::move(x);
  s.set_epochs(job_.epochs());
  s.set_last_test_loss(last_test_loss_);
  s.set_last_test_accuracy(last_test_accuracy_);
  s.set_last_checkpoint(last_checkpoint_);
  for (const proto::PhaseReport& h : machine_.history()) *s.add_history() = h;
  s.set_finished(machine_.finished());
  s.set_attempt(attempt_);
  for (const proto::Directive& d : machine_.pending()) *s.add_pending() = d;
  s.set_paused(machine_.paused());
  return s;
}

void JobState::new_attempt(bool resume, int world_size) {
  std::lock_guard<std::mutex> lock(mu_);
  if (world_size > 0) world_ = world_size;
  ranks_.clear();
  ++attempt_;
  resume_ = resume;
  machine_.reset_for_restart();
}

void JobState::wait_registered(int n, double timeout_s) {
  std::unique_lock<std::mutex> lock(mu_);
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(timeout_s));
  if (registered_cv_.wait_until(lock, deadline, [&] { return static_cast<int>(ranks_.size()) >= n; })) return;
  std::ostringstream missing;
  for (int r = 0; r < world_; ++r)
    if (!ranks_.count(r)) missing << (missing.tellp() > 0 ? ", " : "") << r;
  LOCKSTEP_FAIL_IF(true) << "job " << job_.name() << ": " << ranks_.size() << " of " << n
                         << " ranks registered within " << timeout_s << " s (attempt " << attempt_
                         << "); missing ranks: " << missing.str();
}

}  // namespace lockstep
