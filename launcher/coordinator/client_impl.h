// CoordinatorClient's insides, shared by client.cc (RPCs) and heartbeats.cc (the heartbeat
// thread): the channel and stub, per-call contexts carrying the credential and a deadline, the
// newest heartbeat reply.
#pragma once

#include <grpcpp/grpcpp.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <thread>

#include "launcher/coordinator/client.h"
#include "proto/coordinator.grpc.pb.h"

namespace lockstep {

struct CoordinatorClient::Impl {
  explicit Impl(const ClientOptions& o);
  // A context with the token as metadata and a deadline deadline_s from now.
  std::unique_ptr<grpc::ClientContext> context(double deadline_s) const;
  // Throws RpcError "coordinator at ADDR: RPC failed: CODE: message (hint)" unless s is OK.
  void check(const grpc::Status& s, const char* rpc) const;

  void set_credential(std::string c) {
    std::lock_guard<std::mutex> lock(credential_mu);
    credential = std::move(c);
  }
  void set_last(const proto::HeartbeatReply& r) {
    std::lock_guard<std::mutex> lock(last_mu);
    last = r;
  }
  proto::HeartbeatReply get_last() const {
    std::lock_guard<std::mutex> lock(last_mu);
    return last;
  }

  ClientOptions opts;  // token cleared: the credential is below
  mutable std::mutex credential_mu;
  std::string credential;  // the options' token, then the session credential from Register
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<proto::Coordinator::Stub> stub;
  mutable std::mutex last_mu;
  proto::HeartbeatReply last;
};

// One heartbeat loop: a steady_timer on its own io_context thread. Each tick sends one Heartbeat
// (deadline at most timeout_s / 2, so a hung call cannot hide a lost coordinator) and schedules the
// next tick interval_s after the previous one was due.
struct CoordinatorClient::Heartbeats {
  using Clock = std::chrono::steady_clock;
  Heartbeats(Impl& impl, int rank, double interval_s, double timeout_s, std::function<proto::StepMetrics()> metrics,
             std::function<void(const std::string&)> on_lost);
  ~Heartbeats();  // cancels the call in flight, stops the thread
  void tick();

  Impl& impl;
  const int rank;
  const double interval_s, timeout_s;
  std::function<proto::StepMetrics()> metrics;
  std::function<void(const std::string&)> on_lost;
  boost::asio::io_context io;
  boost::asio::steady_timer timer{io};
  Clock::time_point due, started, last_ok;
  bool ever_ok = false, lost = false;
  std::string last_error;
  std::mutex mu;  // guards inflight and stopping against the destructor
  grpc::ClientContext* inflight = nullptr;
  bool stopping = false;
  std::thread thread;
};

}  // namespace lockstep
