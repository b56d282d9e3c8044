// Per-node aggregation (NodeHeartbeat, coordinator.proto): a node's leader speaks for the ranks
// whose session credentials it carries, each entry checked as that rank's own Heartbeat would be;
// a wrong, missing or repeated entry is refused alone and changes nothing for its rank; the call
// itself needs the leader's own credential for the leader's rank.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "tests/control/control_test_util.h"

namespace lockstep {
namespace {

using testing::raw_stub;
using testing::server_options;
using testing::small_job;

TEST(NodeHeartbeat, EachEntryNeedsItsOwnRanksCredential) {
  const std::string token = "node-heartbeat-token";
  CoordinatorServer server(small_job(), 4, server_options(token));
  auto stub = raw_stub(server.address());
  std::vector<std::string> session(4);
  for (int r = 0; r < 3; ++r) {  // rank 3 never registers
    grpc::ClientContext ctx;
    testing::set_deadline(ctx, 5);
    ctx.AddMetadata("lockstep-token", testing::worker_secret_for(token));
    proto::RegisterReply reply;
    ASSERT_TRUE(stub->Register(&ctx, testing::register_request(r, 4), &reply).ok());
    session[static_cast<size_t>(r)] = reply.session();
  }
  proto::NodeHeartbeatRequest req;
  req.set_rank(0);
  auto entry = [&](int rank, const std::string& cred, int64_t step) {
    proto::HeartbeatRequest& e = *req.add_ranks();
    e.set_rank(rank);
    e.set_session(cred);
    e.mutable_metrics()->set_step(step);
  };
  entry(0, session[0], 10);
  entry(1, session[1], 11);
  entry(2, session[1], 12);  // rank 1's credential for rank 2: refused
  entry(3, session[0], 13);  // not registered: refused
  entry(1, session[1], 99);  // rank 1 again: refused, its first entry stands
  {
    grpc::ClientContext ctx;
    testing::set_deadline(ctx, 5);
    ctx.AddMetadata("lockstep-token", session[1]);  // rank 1's credential for leader rank 0
    proto::NodeHeartbeatReply reply;
    EXPECT_EQ(stub->NodeHeartbeat(&ctx, req, &reply).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  }
  grpc::ClientContext ctx;
  testing::set_deadline(ctx, 5);
  ctx.AddMetadata("lockstep-token", session[0]);
  proto::NodeHeartbeatReply reply;
  ASSERT_TRUE(stub->NodeHeartbeat(&ctx, req, &reply).ok());
  ASSERT_EQ(reply.refused_size(), 3);
  EXPECT_EQ(reply.refused(0).rank(), 2);
  EXPECT_NE(reply.refused(0).why().find("session credential"), std::string::npos) << reply.refused(0).why();
  EXPECT_EQ(reply.refused(1).rank(), 3);
  EXPECT_NE(reply.refused(1).why().find("not registered"), std::string::npos) << reply.refused(1).why();
  EXPECT_EQ(reply.refused(2).rank(), 1);
  EXPECT_NE(reply.refused(2).why().find("twice"), std::string::npos) << reply.refused(2).why();
  const proto::JobStatus st = server.status();
  std::map<int, int64_t> step;
  for (const auto& r : st.ranks()) step[r.rank()] = r.metrics().step();
  EXPECT_EQ(step[0], 10);
  EXPECT_EQ(step[1], 11);
  EXPECT_EQ(step[2], 0) << "a refused entry changes nothing";
}

}  // namespace
}  // namespace lockstep
