// NcclCommunicator: MPI-bootstrapped NCCL collectives, fingerprint-checked, on a comm thread.
#include "comm/nccl/nccl_communicator.h"

#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>

#include <thread>
#include <type_traits>

#include "comm/comm_thread.h"
#include "comm/fingerprint.h"
#include "comm/mpi/fingerprint_exchange.h"
#include "comm/mpi/mpi_runtime.h"
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

}  // namespace

struct NcclCommunicator::Impl {
  std::unique_ptr<MpiRuntime> runtime;
  MPI_Comm bootstrap = MPI_COMM_NULL;  // unique id broadcast, then fingerprints
  std::unique_ptr<FingerprintExchange> exchange;
  ncclComm_t nccl = nullptr;
  cudaStream_t stream = nullptr;
  int device = 0, rank = 0;
  bool aborted = false;
  std::unique_ptr<CommThread> thread;  // destroyed first

  // Ordered after the caller's work on the legacy default stream at issue time.
  cudaEvent_t record_issue_point() {
    cudaEvent_t ev;
    cuda_ok(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming), "cudaEventCreate");
    cuda_ok(cudaEventRecord(ev, cudaStreamLegacy), "cudaEventRecord");
    return ev;
  }

  // Runs `enqueue` on the stream after `ready`, then polls until done or the deadline.
  template <typename F>
  void run(const Fingerprint& fp, const CommOptions& options, cudaEvent_t ready, F enqueue) {
    cuda_ok(cudaSetDevice(device), "cudaSetDevice");
    try {
      if (options.check_fingerprints) exchange->check(fp, options.timeout);
    } catch (...) {
      cudaEventDestroy(ready);
      throw;
    }
    cuda_ok(cudaStreamWaitEvent(stream, ready, 0), "cudaStreamWaitEvent");
    cudaEventDestroy(ready);
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
  impl_->thread = std::make_unique<CommThread>(2 * options_.timeout + std::chrono::seconds(10));
}

NcclCommunicator::~NcclCommunicator() {
  const bool stuck = impl_->thread->stuck();
  impl_->thread.reset();
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
  Fingerprint fp;
  fp.seq = next_seq();
  fp.kind = CollectiveKind::kAllReduce;
  fp.op = op;
  fp.dtype = std::is_same_v<T, float> ? DType::kFloat32 : DType::kFloat64;
  fp.count = buf.size();
  fp.phase = phase();
  fp.mode = mode();
  const ncclDataType_t type = std::is_same_v<T, float> ? ncclFloat : ncclDouble;
  Impl* impl = impl_.get();
  const CommOptions options = options_;
  cudaEvent_t ready = impl->record_issue_point();
  return impl->thread->submit("collective #" + std::to_string(fp.seq) + " " + describe(fp), [=] {
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
  Fingerprint fp;
  fp.seq = next_seq();
  fp.kind = CollectiveKind::kBroadcast;
  fp.dtype = DType::kByte;
  fp.count = buf.size();
  fp.root = root;
  fp.phase = phase();
  fp.mode = mode();
  Impl* impl = impl_.get();
  const CommOptions options = options_;
  cudaEvent_t ready = impl->record_issue_point();
  return impl->thread->submit("collective #" + std::to_string(fp.seq) + " " + describe(fp), [=] {
    impl->run(fp, options, ready, [&] {
      nccl_ok(ncclBroadcast(buf.data(), buf.data(), buf.size(), ncclUint8, root, impl->nccl,
                            impl->stream),
              "ncclBroadcast");
    });
  });
}

Work NcclCommunicator::all_gather(std::span<const float> in, std::span<float> out) {
  LOCKSTEP_CHECK(out.size() == in.size() * size_)
      << "all_gather: out holds " << out.size() << " floats, needs " << size_ << " x " << in.size();
  require_device_pointer(in.data(), "all_gather");
  require_device_pointer(out.data(), "all_gather");
  Fingerprint fp;
  fp.seq = next_seq();
  fp.kind = CollectiveKind::kAllGather;
  fp.dtype = DType::kFloat32;
  fp.count = in.size();
  fp.phase = phase();
  fp.mode = mode();
  Impl* impl = impl_.get();
  const CommOptions options = options_;
  cudaEvent_t ready = impl->record_issue_point();
  return impl->thread->submit("collective #" + std::to_string(fp.seq) + " " + describe(fp), [=] {
    impl->run(fp, options, ready, [&] {
      nccl_ok(ncclAllGather(in.data(), out.data(), in.size(), ncclFloat, impl->nccl, impl->stream),
              "ncclAllGather");
    });
  });
}

Work NcclCommunicator::barrier() {
  Fingerprint fp;
  fp.seq = next_seq();
  fp.kind = CollectiveKind::kBarrier;
  fp.phase = phase();
  fp.mode = mode();
  Impl* impl = impl_.get();
  const CommOptions options = options_;
  return impl->thread->submit("collective #" + std::to_string(fp.seq) + " " + describe(fp), [=] {
    // A completed fingerprint exchange already proved every rank arrived.
    if (options.check_fingerprints)
      impl->exchange->check(fp, options.timeout);
    else
      LOCKSTEP_CHECK(MPI_Barrier(impl->bootstrap) == MPI_SUCCESS);
  });
}

void NcclCommunicator::abort(int code) {
  if (impl_->nccl && !impl_->aborted) ncclCommAbort(impl_->nccl);
  mpi_abort(code);
}

}  // namespace lockstep
