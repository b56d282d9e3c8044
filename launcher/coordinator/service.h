// The gRPC face of JobState: learns who is calling from the credential every call carries (the
// user token, the worker secret, or a rank's session credential; see coordinator.proto), refuses a
// call that credential does not open (UNAUTHENTICATED for an unknown one, PERMISSION_DENIED for a
// known one used for another call or another rank), then maps each RPC to JobState and its Error
// to a status (INVALID_ARGUMENT for a bad request, FAILED_PRECONDITION for one the job's state
// refuses, ALREADY_EXISTS for a rank registered twice). Watch runs on the synchronous server's own
// thread per call (the pool grows, so a watcher blocks no other RPC): it drains its watcher's queue
// into the stream, wakes at least every 100 ms to notice a cancelled call or a stopping server, and
// ends after FINISHED.
#pragma once

#include <string>

#include "launcher/coordinator/job_state.h"
#include "proto/coordinator.grpc.pb.h"

namespace lockstep {

class CoordinatorService final : public proto::Coordinator::Service {
 public:
  enum class Role { kNone, kUser, kWorker, kRank };
  struct Caller {
    Role role = Role::kNone;
    int rank = -1;  // kRank: whose session credential
  };

  CoordinatorService(JobState& state, std::string user_token, std::string worker_secret)
      : state_(state), user_token_(std::move(user_token)), worker_secret_(std::move(worker_secret)) {}

  grpc::Status Register(grpc::ServerContext* ctx, const proto::RegisterRequest* req,
                        proto::RegisterReply* reply) override;
  grpc::Status Heartbeat(grpc::ServerContext* ctx, const proto::HeartbeatRequest* req,
                         proto::HeartbeatReply* reply) override;
  grpc::Status NodeHeartbeat(grpc::ServerContext* ctx, const proto::NodeHeartbeatRequest* req,
                             proto::NodeHeartbeatReply* reply) override;
  grpc::Status NextPhases(grpc::ServerContext* ctx, const proto::NextPhasesRequest* req,
                          proto::NextPhasesReply* reply) override;
  grpc::Status ReportPhase(grpc::ServerContext* ctx, const proto::PhaseReport* req,
                           proto::PhaseReportReply* reply) override;
  grpc::Status Control(grpc::ServerContext* ctx, const proto::ControlRequest* req,
                       proto::ControlReply* reply) override;
  grpc::Status Watch(grpc::ServerContext* ctx, const proto::WatchRequest* req,
                     grpc::ServerWriter<proto::WatchEvent>* writer) override;

  // WatchRequest.status_interval_s: 0 means kDefaultStatusIntervalS; others must lie in the range.
  static constexpr double kDefaultStatusIntervalS = 10, kMinStatusIntervalS = 0.1, kMaxStatusIntervalS = 3600;

 private:
  Caller caller(const grpc::ServerContext* ctx) const;
  // OK if `c` may call `rpc` (as `rank`, for a rank's calls); else the refusal.
  grpc::Status allow(const Caller& c, const char* rpc, Role needed, int rank = -1) const;

  JobState& state_;
  const std::string user_token_, worker_secret_;
};

}  // namespace lockstep
