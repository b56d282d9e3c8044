// Limits: the server's message size cap, RPC deadlines against a closed port and a port that
// accepts but never speaks, and heartbeats noticing a coordinator that went away.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "tests/control/control_test_util.h"

namespace lockstep {
namespace {

using testing::Stopwatch;

// A TCP socket on 127.0.0.1 that listens (the kernel completes connections) but is never
// accepted from: nothing answers the HTTP/2 handshake.
struct SilentPort {
  SilentPort() {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 16) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      ADD_FAILURE() << "cannot set up a listening socket";
    port = ntohs(a.sin_port);
  }
  ~SilentPort() { ::close(fd); }
  int fd = -1, port = 0;
};

// A port nothing listens on: bound, then closed (another process could take it meanwhile, rarely).
int closed_port() {
  SilentPort p;
  return p.port;
}

TEST(CoordinatorLimits, OversizedRequestRefused) {
  ServerOptions so = testing::server_options(new_token());
  so.max_message_bytes = 64 << 10;
  CoordinatorServer server(testing::small_job(), 1, so);
  CoordinatorClient c(testing::client_options(server, so.worker_secret));  // the client's own cap is 4 MiB
  proto::RegisterRequest r = testing::register_request(0, 1);
  r.set_host(std::string(so.max_message_bytes + 1, 'h'));  // RegisterRequest.host: the one free-size field
  try {
    c.register_worker(r, 1);
    ADD_FAILURE() << "a " << r.ByteSizeLong() << "-byte request passed a " << so.max_message_bytes << "-byte cap";
  } catch (const RpcError& e) {
    EXPECT_EQ(e.code(), static_cast<int>(grpc::StatusCode::RESOURCE_EXHAUSTED)) << e.what();
  }
  EXPECT_EQ(server.status().registered(), 0);
  r.set_host(std::string(so.max_message_bytes / 2, 'h'));
  EXPECT_NO_THROW(c.register_worker(r, 1));
  EXPECT_EQ(server.status().registered(), 1);
}

TEST(CoordinatorLimits, NothingListeningFailsFastNamingAddress) {
  ClientOptions o;
  o.address = "127.0.0.1:" + std::to_string(closed_port());
  o.token = "t";
  o.rpc_deadline_s = 1.0;
  CoordinatorClient c(o);
  Stopwatch w;
  try {
    c.control(proto::ControlRequest::STATUS);
    ADD_FAILURE() << "STATUS succeeded against " << o.address;
  } catch (const RpcError& e) {
    EXPECT_NE(std::string(e.what()).find(o.address), std::string::npos) << e.what();
  }
  EXPECT_LT(w.seconds(), o.rpc_deadline_s + 0.5);

  Stopwatch w2;  // register_worker keeps retrying an unreachable coordinator until wait_s
  proto::RegisterRequest r;
  r.set_world_size(1);
  EXPECT_THROW(c.register_worker(r, 1.5), RpcError);
  EXPECT_GT(w2.seconds(), 1.2);
  EXPECT_LT(w2.seconds(), 1.5 + o.rpc_deadline_s + 0.5);
}

TEST(CoordinatorLimits, SilentPeerHitsDeadline) {
  SilentPort silent;
  ClientOptions o;
  o.address = "127.0.0.1:" + std::to_string(silent.port);
  o.token = "t";
  o.rpc_deadline_s = 0.5;
  CoordinatorClient c(o);
  Stopwatch w;
  try {
    c.control(proto::ControlRequest::STATUS);
    ADD_FAILURE() << "STATUS succeeded against a silent port";
  } catch (const RpcError& e) {
    EXPECT_NE(std::string(e.what()).find(o.address), std::string::npos) << e.what();
    EXPECT_EQ(e.code(), static_cast<int>(grpc::StatusCode::DEADLINE_EXCEEDED)) << e.what();
  }
  EXPECT_GT(w.seconds(), o.rpc_deadline_s - 0.05);
  EXPECT_LT(w.seconds(), o.rpc_deadline_s + 0.5);
}

TEST(CoordinatorLimits, HeartbeatsReportLostCoordinator) {
  const std::string token = new_token();
  auto server = std::make_unique<CoordinatorServer>(testing::small_job(), 1, testing::server_options(token));
  const std::string address = server->address();
  CoordinatorClient c(testing::client_options(*server, testing::worker_secret_for(token)));
  c.register_worker(testing::register_request(0, 1));

  const double interval = 0.1, timeout = 1.5;
  std::mutex mu;
  std::condition_variable cv;
  int lost_calls = 0;
  std::string message;
  Stopwatch since_start;
  double lost_at = -1;
  c.start_heartbeats(0, interval, timeout, [] {
    proto::StepMetrics m;
    m.set_step(42);
    return m;
  }, [&](const std::string& m) {
    std::lock_guard<std::mutex> lock(mu);
    ++lost_calls;
    message = m;
    lost_at = since_start.seconds();
    cv.notify_all();
  });
  Stopwatch w;
  while (w.seconds() < 5 && server->status().ranks(0).metrics().step() != 42)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_EQ(server->status().ranks(0).metrics().step(), 42) << "no heartbeat arrived";
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // a while of healthy heartbeats

  const double gone_at = since_start.seconds();
  server.reset();
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_for(lock, std::chrono::duration<double>(timeout + 3), [&] { return lost_calls > 0; });
    ASSERT_EQ(lost_calls, 1) << "on_lost did not fire within " << timeout + 3 << " s";
    EXPECT_GE(lost_at - gone_at, timeout - 2 * interval) << "fired too early: " << message;
    EXPECT_LE(lost_at - gone_at, timeout + 1.0) << message;
    EXPECT_NE(message.find(address), std::string::npos) << message;
    EXPECT_NE(message.find("ago"), std::string::npos) << message;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  std::lock_guard<std::mutex> lock(mu);
  EXPECT_EQ(lost_calls, 1) << "on_lost must fire once";
}

}  // namespace
}  // namespace lockstep
