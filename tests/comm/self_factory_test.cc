// The "self" backend (identities, counted) and the factory's backend names.
#include <gtest/gtest.h>

#include <vector>

#include "comm/factory.h"
#include "runtime/check.h"

namespace lockstep {
namespace {

TEST(SelfComm, CollectivesAreCountedIdentities) {
  auto comm = make_communicator({"self", {}});
  EXPECT_EQ(comm->backend(), "self");
  EXPECT_EQ(comm->size(), 1);
  EXPECT_EQ(comm->rank(), 0);
  std::vector<float> f = {1.f, 2.f, 3.f}, g(3);
  std::vector<double> d = {4.0};
  std::vector<std::byte> b = {std::byte(9)};
  for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kAverage, ReduceOp::kMax, ReduceOp::kMin})
    comm->all_reduce(std::span<float>(f), op).wait();
  comm->all_reduce(std::span<double>(d), ReduceOp::kAverage).wait();
  comm->broadcast(b, 0).wait();
  comm->all_gather(f, g).wait();
  std::vector<std::byte> bg(1);
  comm->all_gather(std::span<const std::byte>(b), std::span<std::byte>(bg)).wait();
  comm->barrier().wait();
  EXPECT_EQ(f, (std::vector<float>{1.f, 2.f, 3.f}));
  EXPECT_EQ(g, f);
  EXPECT_EQ(d[0], 4.0);
  EXPECT_EQ(int(b[0]), 9);
  EXPECT_EQ(int(bg[0]), 9);
  EXPECT_EQ(comm->collectives_issued(), 9u);
  EXPECT_THROW(comm->broadcast(b, 1), Error);
}

TEST(Factory, UnknownBackendIsAnError) {
  try {
    make_communicator({"gloo", {}});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown communicator backend \"gloo\""), std::string::npos)
        << e.what();
  }
}

TEST(Factory, NcclOnlyInCudaBuilds) {
  EXPECT_TRUE(has_backend("mpi"));
  EXPECT_TRUE(has_backend("self"));
  if (!has_backend("nccl")) {
    try {
      make_communicator({"nccl", {}});
      FAIL() << "no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("needs a CUDA build"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace lockstep
