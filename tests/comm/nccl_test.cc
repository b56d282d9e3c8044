// The NCCL backend (CUDA builds): device all-reduce, broadcast and all-gather against the same
// formulas as the MPI tests when this machine has a GPU per rank; without a GPU, a clear Error.
#include <gtest/gtest.h>

#include <vector>

#include "comm/factory.h"
#include "comm/mpi_runtime.h"
#include "runtime/check.h"
#include "runtime/device.h"

namespace lockstep {
namespace {

std::unique_ptr<Communicator> make_nccl() {
  CommSpec spec;
  spec.backend = "nccl";
  spec.options.timeout = std::chrono::seconds(60);
  return make_communicator(spec);
}

// Device copy of a host vector, freed with the object.
struct DeviceBuffer {
  explicit DeviceBuffer(const std::vector<float>& host) : n(host.size()) {
    p = static_cast<float*>(cuda_alloc(n * sizeof(float)));
    cuda_copy_to_device(p, host.data(), n * sizeof(float));
  }
  ~DeviceBuffer() { cuda_free(p); }
  std::vector<float> host() const {
    std::vector<float> h(n);
    cuda_copy_to_host(h.data(), p, n * sizeof(float));
    return h;
  }
  std::span<float> span() { return {p, n}; }
  float* p;
  size_t n;
};

TEST(Nccl, WithoutGpuIsAClearError) {
  if (!has_backend("nccl")) GTEST_SKIP() << "CPU-only build";
  if (cuda_device_count() > 0) GTEST_SKIP() << "this machine has a GPU";
  try {
    make_nccl();
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no CUDA device"), std::string::npos) << e.what();
  }
}

TEST(Nccl, CollectivesOnDeviceBuffers) {
  if (!has_backend("nccl")) GTEST_SKIP() << "CPU-only build";
  if (cuda_device_count() == 0) GTEST_SKIP() << cuda_unavailable_reason();
  // Single-node runs: NCCL refuses two ranks on one GPU.
  if (MpiRuntime::world_size() > cuda_device_count()) GTEST_SKIP() << "fewer GPUs than ranks";
  auto comm = make_nccl();
  const int n = comm->size(), rank = comm->rank();
  EXPECT_EQ(comm->backend(), "nccl");

  const size_t count = size_t(1) << 20;  // 4 MiB
  std::vector<float> x(count);
  for (size_t i = 0; i < count; ++i) x[i] = float(rank + int(i % 7));
  DeviceBuffer sum(x), mx(x);
  comm->all_reduce(sum.span(), ReduceOp::kSum).wait();
  comm->all_reduce(mx.span(), ReduceOp::kMax).wait();
  const auto s = sum.host(), m = mx.host();
  for (size_t i = 0; i < count; ++i) {
    ASSERT_EQ(s[i], n * (n - 1) / 2.0f + n * float(i % 7)) << i;
    ASSERT_EQ(m[i], float(n - 1 + int(i % 7))) << i;
  }

  DeviceBuffer b(std::vector<float>(100, float(rank + 1)));
  comm->broadcast(std::as_writable_bytes(b.span()), n - 1).wait();
  for (float v : b.host()) ASSERT_EQ(v, float(n));

  DeviceBuffer in(std::vector<float>(10, float(rank))), out(std::vector<float>(10 * n, -1.f));
  comm->all_gather(in.span(), out.span()).wait();
  const auto g = out.host();
  for (int r = 0; r < n; ++r)
    for (int i = 0; i < 10; ++i) ASSERT_EQ(g[r * 10 + i], float(r));
  comm->barrier().wait();
  EXPECT_EQ(comm->collectives_issued(), 5u);
}

}  // namespace
}  // namespace lockstep
