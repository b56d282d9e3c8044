// The gRPC face of JobState: checks the token on every call, then maps each RPC to JobState and
// its Error to a status (INVALID_ARGUMENT for a bad request, FAILED_PRECONDITION for one the job's
// state refuses).
#pragma once

#include <string>

#include "launcher/coordinator/job_state.h"
#include "proto/coordinator.grpc.pb.h"

namespace lockstep {

class CoordinatorService final : public proto::Coordinator::Service {
 public:
  CoordinatorService(JobState& state, std::string token) : state_(state), token_(std::move(token)) {}

  grpc::Status Register(grpc::ServerContext* ctx, const proto::RegisterRequest* req,
                        proto::RegisterReply* reply) override;
  grpc::Status Heartbeat(grpc::ServerContext* ctx, const proto::HeartbeatRequest* req,
                         proto::HeartbeatReply* reply) override;
  grpc::Status NextPhases(grpc::ServerContext* ctx, const proto::NextPhasesRequest* req,
                          proto::NextPhasesReply* reply) override;
  grpc::Status ReportPhase(grpc::ServerContext* ctx, const proto::PhaseReport* req,
                           proto::PhaseReportReply* reply) override;
  grpc::Status Control(grpc::ServerContext* ctx, const proto::ControlRequest* req,
                       proto::ControlReply* reply) override;

 private:
  bool authorized(const grpc::ServerContext* ctx) const;

  JobState& state_;
  const std::string token_;
};

}  // namespace lockstep
