// The worker's heartbeat loop on a Boost.Asio timer thread (see client_impl.h).
#include <algorithm>
#include <cstdio>

#include <boost/asio/post.hpp>

#include "launcher/coordinator/client_impl.h"
#include "launcher/coordinator/grpc_util.h"

namespace lockstep {
namespace {

std::chrono::steady_clock::duration seconds(double s) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(s));
}

}  // namespace

CoordinatorClient::Heartbeats::Heartbeats(Impl& impl, int rank, double interval_s, double timeout_s,
                                          std::function<proto::StepMetrics()> metrics,
                                          std::function<void(const std::string&)> on_lost)
    : impl(impl), rank(rank), interval_s(interval_s), timeout_s(timeout_s), metrics(std::move(metrics)),
      on_lost(std::move(on_lost)) {
  LOCKSTEP_FAIL_IF(interval_s <= 0 || timeout_s <= 0)
      << "heartbeats to " << impl.opts.address << ": interval " << interval_s << " s and timeout " << timeout_s
      << " s must be positive";
  started = last_ok = due = Clock::now();
  boost::asio::post(io, [this] { tick(); });
  thread = std::thread([this] { io.run(); });
}

CoordinatorClient::Heartbeats::~Heartbeats() {
  {
    std::lock_guard<std::mutex> lock(mu);
    stopping = true;
    if (inflight) inflight->TryCancel();
  }
  io.stop();
  if (thread.joinable()) thread.join();
}

void CoordinatorClient::Heartbeats::tick() {
  proto::HeartbeatRequest req;
  req.set_rank(rank);
  grpc::Status status;
  try {
    if (metrics) *req.mutable_metrics() = metrics();
  } catch (const std::exception& e) {
    status = grpc::Status(grpc::StatusCode::INTERNAL, std::string("metrics callback threw: ") + e.what());
  }
  proto::HeartbeatReply reply;
  if (status.ok()) {
    auto ctx = impl.context(std::min(impl.opts.rpc_deadline_s, std::max(0.05, timeout_s / 2)));
    {
      std::lock_guard<std::mutex> lock(mu);
      if (stopping) return;
      inflight = ctx.get();
    }
    status = impl.stub->Heartbeat(ctx.get(), req, &reply);
    std::lock_guard<std::mutex> lock(mu);
    inflight = nullptr;
    if (stopping) return;
  }
  const auto now = Clock::now();
  if (status.ok()) {
    impl.set_last(reply);
    last_ok = now;
    ever_ok = true;
  } else {
    last_error = grpc_util::status_text(status);
    const double silent = std::chrono::duration<double>(now - last_ok).count();
    if (!lost && silent >= timeout_s) {
      lost = true;
      char msg[512];
      std::snprintf(msg, sizeof msg, "lost the coordinator at %s: %s %.1f s ago (timeout %.1f s); last error: %s",
                    impl.opts.address.c_str(), ever_ok ? "last heartbeat reply came" : "no reply since heartbeats started",
                    silent, timeout_s, last_error.c_str());
      if (on_lost) on_lost(msg);
    }
  }
  due += seconds(interval_s);
  if (due < now) due = now;
  timer.expires_at(due);
  timer.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) tick();
  });
}

void CoordinatorClient::start_heartbeats(int rank, double interval_s, double timeout_s,
                                         std::function<proto::StepMetrics()> metrics,
                                         std::function<void(const std::string&)> on_lost) {
  hb_.reset();
  hb_ = std::make_unique<Heartbeats>(*impl_, rank, interval_s, timeout_s, std::move(metrics), std::move(on_lost));
}

void CoordinatorClient::stop_heartbeats() { hb_.reset(); }

}  // namespace lockstep
