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
      machine_(job_.phases(), job_.epochs()), hub_(o.max_watchers) {
  LOCKSTEP_FAIL_IF(world_ < 1) << "coordinator for job " << job_.name() << ": world size " << world_
                               << " must be at least 1";
}

namespace {

// "rank<R>-<64 hex digits>": the rank in clear (to find whose it is), the secret after the dash.
std::string session_for(int rank) { return "rank" + std::to_string(rank) + "-" + new_token(); }

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string who(const proto::RankStatus& r) {
  return "rank " + std::to_string(r.rank()) + " (pid " + std::to_string(r.pid()) + " on " + r.host() + ")";
}

// "phase TRAIN, epoch 3/10, step 1234, 2/2 ranks registered" from rank 0's newest heartbeat.
std::string status_line(const proto::JobStatus& s) {
  std::string out = "phase " + proto::PhaseKind_Name(s.phase());
  if (s.ranks_size() > 0 && s.ranks(0).metrics().epoch() > 0)
    out += ", epoch " + std::to_string(s.ranks(0).metrics().epoch()) + "/" + std::to_string(s.epochs()) + ", step " +
           std::to_string(s.ranks(0).metrics().step());
  return out + ", " + std::to_string(s.registered()) + "/" + std::to_string(s.world_size()) + " ranks registered";
}

std::string phase_list(const std::vector<proto::PhaseKind>& phases) {
  std::string out;
  for (proto::PhaseKind k : phases) out += (out.empty() ? "" : ", ") + proto::PhaseKind_Name(k);
  return out;
}

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
  proto::WatchEvent e = event_locked(proto::WatchEvent::RANK_REGISTERED,
                                     who(x.info) + " registered (" + std::to_string(ranks_.size()) + " of " +
                                         std::to_string(world_) + ")");
  *e.mutable_rank() = x.info;
  hub_.publish(e);
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
  x.lost = false;
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
  const proto::PhaseKind state = machine_.state();
  // Only rank 0 drives the phases; another rank asking learns the same plan without moving state.
  const auto phases = r.rank() == 0 ? machine_.begin_epoch_end(r.epoch()) : machine_.next_phases(r.epoch());
  if (r.rank() == 0 && !phases.empty()) {
    proto::WatchEvent e = event_locked(proto::WatchEvent::PHASE, "epoch " + std::to_string(r.epoch()) + " ended: " +
                                                                     phase_list(phases) + " next");
    e.set_phase(machine_.state());
    e.set_phase_id(machine_.phase_id());
    e.set_epoch(r.epoch());
    for (proto::PhaseKind k : phases) e.add_planned(k);
    hub_.publish(e);
  } else {
    publish_changes_locked(state, machine_.paused());
  }
  proto::NextPhasesReply reply;
  for (proto::PhaseKind k : phases) reply.add_phases(k);
  return reply;
}

void JobState::report(const proto::PhaseReport& r) {
  LOCKSTEP_FAIL_IF(r.rank() != 0) << "ReportPhase from rank " << r.rank() << " (phase " << r.phase_id()
                                  << "): only rank 0 reports phases";
  for (const proto::TopKAccuracy& t : r.top_k_accuracy())
    LOCKSTEP_FAIL_IF(!(t.accuracy() >= 0 && t.accuracy() <= 1) || t.k() < 1)
        << "ReportPhase (phase " << r.phase_id() << "): top_k_accuracy k=" << t.k() << " accuracy " << t.accuracy()
        << " is not a k >= 1 with an accuracy in [0, 1]";
  std::lock_guard<std::mutex> lock(mu_);
  const proto::PhaseKind state = machine_.state();
  const bool paused = machine_.paused();
  machine_.report(r, /*from_checkpoint=*/resume_);
  if (r.kind() == proto::EVAL) {
    last_test_loss_ = r.test_loss();
    last_test_accuracy_ = r.test_accuracy();
    last_top_k_.assign(r.top_k_accuracy().begin(), r.top_k_accuracy().end());
  }
  if (!r.checkpoint().empty()) last_checkpoint_ = r.checkpoint();
  std::string what = proto::PhaseKind_Name(r.kind()) + " ran at epoch " + std::to_string(r.epoch()) + ", step " +
                     std::to_string(r.step());
  if (r.directive_id() > 0) what += " (directive " + std::to_string(r.directive_id()) + ")";
  if (r.kind() == proto::EVAL)
    what += ": test loss " + std::to_string(r.test_loss()) + ", accuracy " + std::to_string(r.test_accuracy());
  if (r.kind() == proto::CHECKPOINT || r.kind() == proto::STOP) what += ": checkpoint " + r.checkpoint();
  if (r.finished()) what += "; the job is complete";
  proto::WatchEvent e = event_locked(proto::WatchEvent::PHASE_REPORTED, what);
  *e.mutable_report() = r;
  hub_.publish(e);
  publish_changes_locked(state, paused);
}

proto::ControlReply JobState::control(proto::ControlRequest::Command c) {
  std::lock_guard<std::mutex> lock(mu_);
  const proto::PhaseKind state = machine_.state();
  const bool paused = machine_.paused();
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
  proto::Directive d;
  if (reply.directive_id() > 0) {
    d.set_id(reply.directive_id());
    d.set_kind(static_cast<proto::PhaseKind>(c == proto::ControlRequest::EVAL         ? proto::EVAL
                                             : c == proto::ControlRequest::CHECKPOINT ? proto::CHECKPOINT
                                             : c == proto::ControlRequest::PAUSE      ? proto::PAUSE
                                                                                      : proto::STOP));
    proto::WatchEvent e = event_locked(proto::WatchEvent::DIRECTIVE, proto::PhaseKind_Name(d.kind()) +
                                                                         " queued as directive " +
                                                                         std::to_string(d.id()));
    *e.mutable_directive() = d;
    hub_.publish(e);
  }
  publish_changes_locked(state, paused, d.kind() == proto::PAUSE ? &d : nullptr);
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
  for (const proto::TopKAccuracy& t : last_top_k_) *s.add_last_top_k_accuracy() = t;
  if (result_) *s.mutable_result() = *result_;
  return s;
}

void JobState::new_attempt(bool resume, int world_size) {
  std::lock_guard<std::mutex> lock(mu_);
  const proto::PhaseKind state = machine_.state();
  const bool paused = machine_.paused();
  if (world_size > 0) world_ = world_size;
  ranks_.clear();
  ++attempt_;
  resume_ = resume;
  machine_.reset_for_restart();
  hub_.publish(event_locked(proto::WatchEvent::ATTEMPT, "attempt " + std::to_string(attempt_) + " starts on " +
                                                            std::to_string(world_) + " ranks" +
                                                            (resume ? ", from the last checkpoint" : "")));
  publish_changes_locked(state, paused);
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

namespace lockstep {

proto::WatchEvent JobState::event_locked(proto::WatchEvent::Kind kind, const std::string& message) const {
  proto::WatchEvent e;
  e.set_kind(kind);
  e.set_time_unix_s(unix_now());
  e.set_attempt(attempt_);
  e.set_message(message);
  return e;
}

void JobState::publish_changes_locked(proto::PhaseKind state, bool paused, const proto::Directive* pause) {
  if (machine_.paused() != paused) {
    proto::WatchEvent e = event_locked(machine_.paused() ? proto::WatchEvent::PAUSED : proto::WatchEvent::RESUMED,
                                       machine_.paused() ? "paused: every rank holds at its next step boundary"
                                                         : "resumed");
    if (pause) *e.mutable_directive() = *pause;
    hub_.publish(e);
  }
  if (machine_.state() != state) {
    proto::WatchEvent e = event_locked(proto::WatchEvent::PHASE, "phase " + proto::PhaseKind_Name(machine_.state()));
    e.set_phase(machine_.state());
    e.set_phase_id(machine_.phase_id());
    hub_.publish(e);
  }
}

void JobState::check_lost_locked() {
  const auto now = Clock::now();
  if (now - last_lost_check_ < std::chrono::milliseconds(250)) return;
  last_lost_check_ = now;
  if (machine_.finished()) return;  // after the last phase the ranks exit by design
  for (auto& [rank, x] : ranks_) {
    const double silent = std::chrono::duration<double>(now - x.last_seen).count();
    if (x.lost || silent <= opts_.coordinator_timeout_s) continue;
    x.lost = true;
    proto::WatchEvent e = event_locked(proto::WatchEvent::RANK_LOST,
                                       who(x.info) + " sent no heartbeat for " + std::to_string(silent) +
                                           " s (control.heartbeat_timeout_s " +
                                           std::to_string(opts_.coordinator_timeout_s) + ")");
    proto::RankStatus& r = *e.mutable_rank();
    r.set_rank(x.info.rank());
    r.set_host(x.info.host());
    r.set_pid(x.info.pid());
    hub_.publish(e);
  }
}

std::shared_ptr<WatchHub::Watcher> JobState::watch() {
  std::lock_guard<std::mutex> lock(mu_);
  proto::WatchEvent first = event_locked(proto::WatchEvent::STATUS, "");
  *first.mutable_status() = status_locked();
  first.set_message(status_line(first.status()));
  return hub_.add(std::move(first));
}

void JobState::push_status(WatchHub::Watcher& w) {
  std::lock_guard<std::mutex> lock(mu_);
  check_lost_locked();
  proto::WatchEvent e = event_locked(proto::WatchEvent::STATUS, "");
  *e.mutable_status() = status_locked();
  e.set_message(status_line(e.status()));
  hub_.push(w, std::move(e));
}

void JobState::note_failure(const std::string& why) {
  std::lock_guard<std::mutex> lock(mu_);
  hub_.publish(event_locked(proto::WatchEvent::ATTEMPT_FAILED, "attempt " + std::to_string(attempt_) +
                                                                   " failed: " + why));
}

proto::JobResult JobState::result(int exit_status, const std::string& failure) const {
  std::lock_guard<std::mutex> lock(mu_);
  proto::JobResult r;
  r.set_job(job_.name());
  r.set_exit_status(exit_status);
  r.set_finished(machine_.finished());
  r.set_complete(machine_.complete());
  r.set_failure(failure);
  r.set_epochs(job_.epochs());
  if (!machine_.history().empty()) {
    r.set_epoch(machine_.history().back().epoch());
    r.set_step(machine_.history().back().step());
  }
  r.set_last_test_loss(last_test_loss_);
  r.set_last_test_accuracy(last_test_accuracy_);
  for (const proto::TopKAccuracy& t : last_top_k_) *r.add_last_top_k_accuracy() = t;
  r.set_last_checkpoint(last_checkpoint_);
  r.set_attempt(attempt_);
  r.set_world_size(world_);
  r.set_end_time_unix_s(unix_now());
  return r;
}

void JobState::finish(const proto::JobResult& r) {
  std::lock_guard<std::mutex> lock(mu_);
  result_ = r;
  std::string what = "job " + r.job() + (r.complete() ? " complete" : r.finished() ? " stopped" : " failed") +
                     " (exit status " + std::to_string(r.exit_status()) + ")";
  if (!r.failure().empty()) what += ": " + r.failure();
  proto::WatchEvent e = event_locked(proto::WatchEvent::FINISHED, what);
  *e.mutable_result() = r;
  hub_.publish(e);
}

}  // namespace lockstep
