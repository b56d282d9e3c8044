// NcclCommunicator: the NCCL calls of each collective (MPI-bootstrapped); fingerprint check and
// queue: collective_queue.h.
#include "comm/nccl/nccl_communicator.h"

#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>

#include <memory>
#include <thread>
#include <type_traits>

#include "comm/collective_queue.h"
#include "comm/fingerprint.h"
#include "comm/mpi/fingerprint_exchange.h"
#include "comm/mpi_runtime.h"
#include "runtime/check.h"

namespace lockstep {
namespace {

void cuda_ok(cudaError_t rc, const char* what) {
  LOCKSTEP_FAIL_IF(rc != cudaSuccess) << "nccl backend: " << what << ": " << cudaGetErrorString(rc);
}

void nccl_ok(ncclResult_t rc, const char* what) {
  LOCKSTEP_FAIL_IF(rc != ncclSuccess) << "nccl backend: " << what << ": " << ncclGetErrorString(rc);
}

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum: return ncclSum;
    case ReduceOp::kAverage: return ncclAvg;
    case ReduceOp::kMax: return ncclMax;
    case ReduceOp::kMin: return ncclMin;
  }
  return ncclSum;
}

void require_device_pointer(const void* p, const char* what) {
  if (p == nullptr) return;  // empty span
  cudaPointerAttributes attr{};
  cuda_ok(cudaPointerGetAttributes(&attr, p), "cudaPointerGetAttributes");
  LOCKSTEP_FAIL_IF(attr.type != cudaMemoryTypeDevice && attr.type != cudaMemoryTypeManaged)
      << "nccl backend: " << what << " needs a device buffer (got host memory); use the mpi backend "
      << "for CPU tensors";
}

// The issue point of a collective: an event ordered after the caller's work on the legacy default
// stream when the collective is called; destroyed with the last task that holds it (also when the
// fingerprint check fails and the collective never runs).
using IssuePoint = std::shared_ptr<CUevent_st>;

IssuePoint record_issue_point() {
  cudaEvent_t ev;
  cuda_ok(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming), "cudaEventCreate");
  IssuePoint ready(ev, [](cudaEvent_t e) { cudaEventDestroy(e); });
  cuda_ok(cudaEventRecord(ev, cudaStreamLegacy), "cudaEventRecord");
  return ready;
}

}  // namespace

struct NcclCommunicator::Impl {
  std::unique_ptr<MpiRuntime> runtime;
  MPI_Comm bootstrap = MPI_COMM_NULL;  // unique id broadcast, then fingerprints
  std::unique_ptr<FingerprintExchange> exchange;
  ncclComm_t nccl = nullptr;
  cudaStream_t stream = nullptr;
  int device = 0, rank = 0;
  bool aborted = false;
  std::unique_ptr<CollectiveQueue> queue;  // destroyed first

  // On the comm thread, after the fingerprint check: runs `enqueue` on the stream after `ready`,
  // then polls until done or the deadline.
  template <typename F>
  void run(const Fingerprint& fp, const CommOptions& options, const IssuePoint& ready, F enqueue) {
    cuda_ok(cudaSetDevice(device), "cudaSetDevice");
    cuda_ok(cudaStreamWaitEvent(stream, ready.get(), 0), "cudaStreamWaitEvent");
    enqueue();
    const auto deadline = std::chrono::steady_clock::now() + options.timeout;
    for (int polls = 0;; ++polls) {
      const cudaError_t rc = cudaStreamQuery(stream);
      if (rc == cudaSuccess) return;
      if (rc != cudaErrorNotReady) cuda_ok(rc, "cudaStreamQuery");
      ncclResult_t async = ncclSuccess;
      nccl_ok(ncclCommGetAsyncError(nccl, &async), "ncclCommGetAsyncError");
      if (async != ncclSuccess || std::chrono::steady_clock::now() > deadline) {
        ncclCommAbort(nccl);
        aborted = true;
        throw Error("collective #" + std::to_string(fp.seq) + " " + describe(fp) + ": " +
                    (async != ncclSuccess ? std::string("NCCL error ") + ncclGetErrorString(async)
                                          : "NCCL did not complete within " +
                                                std::to_string(options.timeout.count()) + " ms") +
                    " on rank " + std::to_string(rank));
      }
      if (polls > 1000) std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
};

NcclCommunicator::NcclCommunicator(CommOptions options)
    : options_(options), impl_(std::make_unique<Impl>()) {
  impl_->runtime = std::make_unique<MpiRuntime>();
  MPI_Comm_dup(MPI_COMM_WORLD, &impl_->bootstrap);
  MPI_Comm_set_errhandler(impl_->bootstrap, MPI_ERRORS_RETURN);
  MPI_Comm_rank(impl_->bootstrap, &rank_);
  MPI_Comm_size(impl_->bootstrap, &size_);

  // One rank per GPU: the node-local rank picks the device.
  MPI_Comm local;
  MPI_Comm_split_type(impl_->bootstrap, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local);
  int local_rank = 0, local_size = 1;
  MPI_Comm_rank(local, &local_rank);
  MPI_Comm_size(local, &local_size);
  MPI_Comm_free(&local);
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess) devices = 0;
  LOCKSTEP_FAIL_IF(devices == 0) << "nccl backend: no CUDA device on rank " << rank_;
  LOCKSTEP_FAIL_IF(local_size > devices)
      << "nccl backend: " << local_size << " ranks on this node but " << devices
      << " GPU(s); NCCL needs one rank per GPU (use the mpi backend to share a GPU)";
  device_ = impl_->device = local_rank;
  impl_->rank = rank_;
  cuda_ok(cudaSetDevice(device_), "cudaSetDevice");
  cuda_ok(cudaStreamCreateWithFlags(&impl_->stream, cudaStreamNonBlocking), "cudaStreamCreate");

  ncclUniqueId id{};
  if (rank_ == 0) nccl_ok(ncclGetUniqueId(&id), "ncclGetUniqueId");
  LOCKSTEP_CHECK(MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, impl_->bootstrap) == MPI_SUCCESS);
  nccl_ok(ncclCommInitRank(&impl_->nccl, size_, id, rank_), "ncclCommInitRank");

  impl_->exchange = std::make_unique<FingerprintExchange>(impl_->bootstrap, rank_, size_);
  impl_->queue = std::make_unique<CollectiveQueue>(
      options_, [exchange = impl_->exchange.get()](const Fingerprint& fp,
                                                   std::chrono::milliseconds timeout) {
        exchange->check(fp, timeout);
      });
}

NcclCommunicator::~NcclCommunicator() {
  const bool stuck = impl_->queue->stuck();
  impl_->queue.reset();
  if (stuck) {
    // The detached thread still uses impl_, MPI and NCCL: leak them rather than finalize under it.
    impl_->runtime.release();
    impl_.release();
    return;
  }
  if (impl_->nccl) {
    if (impl_->aborted) {
      // ncclCommAbort already released it.
    } else {
      ncclCommDestroy(impl_->nccl);
    }
  }
  if (impl_->stream) cudaStreamDestroy(impl_->stream);
  impl_->exchange.reset();
  MPI_Comm_free(&impl_->bootstrap);
  impl_->runtime.reset();
}

template <typename T>
Work NcclCommunicator::all_reduce_impl(std::span<T> buf, ReduceOp op) {
  require_device_pointer(buf.data(), "all_reduce");
  const Fingerprint fp = issue({.count = buf.size(),
                                .op = op,
                                .kind = CollectiveKind::kAllReduce,
                                .dtype = std::is_same_v<T, float> ? DType::kFloat32 : DType::kFloat64});
  const ncclDataType_t type = std::is_same_v<T, float> ? ncclFloat : ncclDouble;
  Impl* impl = impl_.get();
  const CommOptions options = options_;
  const IssuePoint ready = record_issue_point();
  return impl->queue->submit(fp, [=] {
    impl->run(fp, options, ready, [&] {
      nccl_ok(ncclAllReduce(buf.data(), buf.data(), buf.size(), type, nccl_op(op), impl->nccl,
                            impl->stream),
              "ncclAllReduce");
    });
  });
}

Work NcclCommunicator::all_reduce(std::span<float> buf, ReduceOp op) { return all_reduce_impl(buf, op); }
Work NcclCommunicator::all_reduce(std::span<double> buf, ReduceOp op) { return all_reduce_impl(buf, op); }

Work NcclCommunicator::broadcast(std::span<std::byte> buf, int root) {
  LOCKSTEP_CHECK(root >= 0 && root < size_) << "broadcast root " << root << " of " << size_ << " ranks";
  require_device_pointer(buf.data(), "broadcast");
  const Fingerprint fp = issue(
      {.count = buf.size(), .root = root, .kind = CollectiveKind::kBroadcast, .dtype = DType::kByte});
  Impl* impl = impl_.get();
  const CommOptions options = options_;
  const IssuePoint ready = record_issue_point();
  return impl->queue->submit(fp, [=] {
    impl->run(fp, options, ready, [&] {
      nccl_ok(ncclBroadcast(buf.data(), buf.data(), buf.size(), ncclUint8, root, impl->nccl,
                            impl->stream),
              "ncclBroadcast");
    });
  });
}

template <typename T>
Work NcclCommunicator::all_gather_impl(std::span<const T> in, std::span<T> out) {
  constexpr bool kFloat = std::is_same_v<T, float>;
  LOCKSTEP_CHECK(out.size() == in.size() * size_)
      << "all_gather: out holds " << out.size() << (kFloat ? " floats" : " bytes") << ", needs "
      << size_ << " x " << in.size();
  require_device_pointer(in.data(), "all_gather");
  require_device_pointer(out.data(), "all_gather");
  const Fingerprint fp = issue({.count = in.size(),
                                .kind = CollectiveKind::kAllGather,
                                .dtype = kFloat ? DType::kFloat32 : DType::kByte});
  const ncclDataType_t type = kFloat ? ncclFloat : ncclUint8;
  Impl* impl = impl_.get();
  const CommOptions options = options_;
  const IssuePoint ready = record_issue_point();
  return impl->queue->submit(fp, [=] {
    impl->run(fp, options, ready, [&] {
      nccl_ok(ncclAllGather(in.data(), out.data(), in.size(), type, impl->nccl, impl->stream),
              "ncclAllGather");
    });
  });
}

Work NcclCommunicator::all_gather(std::span<const float> in, std::span<float> out) {
  return all_gather_impl(in, out);
}
Work NcclCommunicator::all_gather(std::span<const std::byte> in, std::span<std::byte> out) {
  return all_gather_impl(in, out);
}

Work NcclCommunicator::barrier() {
  const Fingerprint fp = issue({.kind = CollectiveKind::kBarrier});
  const MPI_Comm bootstrap = impl_->bootstrap;
  const bool checked = options_.check_fingerprints;
  return impl_->queue->submit(fp, [=] {
    // A completed fingerprint exchange already proved every rank arrived.
    if (!checked) {
      LOCKSTEP_CHECK(MPI_Barrier(bootstrap) == MPI_SUCCESS);
    }
  });
}

void NcclCommunicator::abort(int code) {
  if (impl_->nccl && !impl_->aborted) ncclCommAbort(impl_->nccl);
  mpi_abort(code);
}

}  // namespace lockstep
