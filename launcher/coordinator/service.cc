// The coordinator's RPC handlers: who is calling, then JobState (see service.h).
#include "launcher/coordinator/service.h"

#include <chrono>
#include <sstream>

#include "launcher/coordinator/grpc_util.h"
#include "runtime/check.h"

namespace lockstep {
namespace {

// Runs `f` if the caller may make this call (`refusal` is empty); an Error from it becomes `code`
// with its message (RankTaken: ALREADY_EXISTS).
template <typename F>
grpc::Status guarded(const grpc::Status& refusal, grpc::StatusCode code, F&& f) {
  if (!refusal.ok()) return refusal;
  try {
    f();
    return grpc::Status::OK;
  } catch (const RankTaken& e) {
    return grpc::Status(grpc::StatusCode::ALREADY_EXISTS, e.what());
  } catch (const Error& e) {
    return grpc::Status(code, e.what());
  }
}

grpc::Status denied(const std::string& why) { return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, why); }

const char* name_of(const CoordinatorService::Caller& c) {
  switch (c.role) {
    case CoordinatorService::Role::kUser: return "the user token";
    case CoordinatorService::Role::kWorker: return "the worker secret";
    case CoordinatorService::Role::kRank: return "a rank's session credential";
    default: return "no credential";
  }
}

}  // namespace

CoordinatorService::Caller CoordinatorService::caller(const grpc::ServerContext* ctx) const {
  const auto& md = ctx->client_metadata();
  auto [first, last] = md.equal_range(grpc_util::kTokenKey);
  if (first == last || std::next(first) != last) return {};  // none, or ambiguous
  const std::string_view given(first->second.data(), first->second.size());
  // Every comparison runs, whichever matches, so the time taken does not tell which one did.
  const bool user = grpc_util::constant_time_equal(given, user_token_);
  const bool worker = grpc_util::constant_time_equal(given, worker_secret_);
  const int rank = state_.session_rank(given);
  if (user) return {Role::kUser, -1};
  if (worker) return {Role::kWorker, -1};
  if (rank >= 0) return {Role::kRank, rank};
  return {};
}

grpc::Status CoordinatorService::allow(const Caller& c, const char* rpc, Role needed, int rank) const {
  if (c.role == Role::kNone) return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, grpc_util::kAuthMessage);
  if (c.role != needed) {
    const char* needs = needed == Role::kUser     ? "the user token (RUN_DIR/token)"
                        : needed == Role::kWorker ? "the worker secret (workers get it in $LOCKSTEP_WORKER_SECRET)"
                                                  : "the session credential its rank got from Register";
    return denied(std::string(rpc) + " needs " + needs + "; it was called with " + name_of(c));
  }
  if (needed == Role::kRank && c.rank != rank)
    return denied(std::string(rpc) + " for rank " + std::to_string(rank) + " carries the session credential of rank " +
                  std::to_string(c.rank) + "; a rank acts only as itself");
  return grpc::Status::OK;
}

grpc::Status CoordinatorService::Register(grpc::ServerContext* ctx, const proto::RegisterRequest* req,
                                          proto::RegisterReply* reply) {
  return guarded(allow(caller(ctx), "Register", Role::kWorker), grpc::StatusCode::INVALID_ARGUMENT,
                 [&] { *reply = state_.register_rank(*req); });
}

grpc::Status CoordinatorService::Heartbeat(grpc::ServerContext* ctx, const proto::HeartbeatRequest* req,
                                           proto::HeartbeatReply* reply) {
  return guarded(allow(caller(ctx), "Heartbeat", Role::kRank, req->rank()), grpc::StatusCode::FAILED_PRECONDITION,
                 [&] { *reply = state_.heartbeat(*req); });
}

grpc::Status CoordinatorService::NodeHeartbeat(grpc::ServerContext* ctx, const proto::NodeHeartbeatRequest* req,
                                               proto::NodeHeartbeatReply* reply) {
  return guarded(allow(caller(ctx), "NodeHeartbeat", Role::kRank, req->rank()), grpc::StatusCode::INVALID_ARGUMENT,
                 [&] { *reply = state_.node_heartbeat(*req); });
}

grpc::Status CoordinatorService::NextPhases(grpc::ServerContext* ctx, const proto::NextPhasesRequest* req,
                                            proto::NextPhasesReply* reply) {
  return guarded(allow(caller(ctx), "NextPhases", Role::kRank, req->rank()), grpc::StatusCode::INVALID_ARGUMENT,
                 [&] { *reply = state_.next_phases(*req); });
}

grpc::Status CoordinatorService::ReportPhase(grpc::ServerContext* ctx, const proto::PhaseReport* req,
                                             proto::PhaseReportReply*) {
  return guarded(allow(caller(ctx), "ReportPhase", Role::kRank, req->rank()), grpc::StatusCode::INVALID_ARGUMENT,
                 [&] { state_.report(*req); });
}

grpc::Status CoordinatorService::Control(grpc::ServerContext* ctx, const proto::ControlRequest* req,
                                         proto::ControlReply* reply) {
  return guarded(allow(caller(ctx), "Control", Role::kUser), grpc::StatusCode::FAILED_PRECONDITION,
                 [&] { *reply = state_.control(req->command()); });
}

grpc::Status CoordinatorService::Watch(grpc::ServerContext* ctx, const proto::WatchRequest* req,
                                       grpc::ServerWriter<proto::WatchEvent>* writer) {
  if (grpc::Status s = allow(caller(ctx), "Watch", Role::kUser); !s.ok()) return s;
  double interval_s = req->status_interval_s();
  if (interval_s == 0) interval_s = kDefaultStatusIntervalS;
  if (!(interval_s >= kMinStatusIntervalS && interval_s <= kMaxStatusIntervalS)) {
    std::ostringstream why;
    why << "Watch: status_interval_s " << req->status_interval_s() << " is outside [" << kMinStatusIntervalS << ", "
        << kMaxStatusIntervalS << "] seconds (0: the default, " << kDefaultStatusIntervalS << ")";
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, why.str());
  }
  std::shared_ptr<WatchHub::Watcher> me;
  try {
    me = state_.watch();
  } catch (const WatchLimit& e) {
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, e.what());
  }
  struct Leave {
    WatchHub& hub;
    const std::shared_ptr<WatchHub::Watcher>& w;
    ~Leave() { hub.remove(w); }
  } leave{state_.hub(), me};

  using Clock = std::chrono::steady_clock;
  const auto interval = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(interval_s));
  auto next_status = Clock::now() + interval;
  uint64_t seq = 0;
  for (;;) {
    if (ctx->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "Watch: the call was cancelled");
    proto::WatchEvent e;
    const auto wake = std::min(next_status, Clock::now() + std::chrono::milliseconds(100));
    switch (state_.hub().next(*me, wake, &e)) {
      case WatchHub::Next::kEvent:
        e.set_seq(++seq);
        if (!writer->Write(e)) return grpc::Status(grpc::StatusCode::CANCELLED, "Watch: the client went away");
        if (e.kind() == proto::WatchEvent::FINISHED) return grpc::Status::OK;
        break;
      case WatchHub::Next::kTimeout:
        if (Clock::now() >= next_status) {
          state_.push_status(*me);
          next_status = std::max(next_status + interval, Clock::now());
        }
        break;
      case WatchHub::Next::kClosed:
        return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                            "Watch: the coordinator stopped before the job's result was known (see RUN_DIR/result.json "
                            "if the launcher wrote one)");
      case WatchHub::Next::kOverflow:
        return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                            "Watch: this watcher fell " + std::to_string(WatchHub::kMaxQueued) +
                                " events behind the job; read the stream faster, or Watch again");
    }
  }
}

}  // namespace lockstep
