// MpiCommunicator: the MPI calls of each collective; fingerprint check and queue: collective_queue.h.
#include "comm/mpi/mpi_communicator.h"

#include <mpi.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <thread>
#include <type_traits>

#include "comm/collective_queue.h"
#include "comm/fingerprint.h"
#include "comm/mpi/fingerprint_exchange.h"
#include "comm/mpi_runtime.h"
#include "runtime/check.h"

namespace lockstep {
namespace {

// Communicators alive in this process: a second one needs MPI_THREAD_MULTIPLE.
std::atomic<int> g_live_communicators{0};

void mpi_ok(int rc, const char* call, const Fingerprint& fp) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw Error("collective #" + std::to_string(fp.seq) + " " + describe(fp) + ": " + call +
              " failed: " + std::string(text, len));
}

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::kMax: return MPI_MAX;
    case ReduceOp::kMin: return MPI_MIN;
    default: return MPI_SUM;  // kAverage: sum, then divide by size
  }
}

// MPI counts are int: large buffers move in chunks of at most kChunk elements.
constexpr size_t kChunk = size_t(1) << 30;

// Creating a communicator is collective: a nonblocking dup polled against the timeout, so a rank
// whose peers never create theirs fails instead of hanging.
void dup_world(MPI_Comm* out, std::chrono::milliseconds timeout) {
  MPI_Request req;
  LOCKSTEP_CHECK(MPI_Comm_idup(MPI_COMM_WORLD, out, &req) == MPI_SUCCESS);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (int done = 0;;) {
    LOCKSTEP_CHECK(MPI_Test(&req, &done, MPI_STATUS_IGNORE) == MPI_SUCCESS);
    if (done) return;
    LOCKSTEP_FAIL_IF(std::chrono::steady_clock::now() > deadline)
        << "creating the MPI communicator: not every rank created one within " << timeout.count()
        << " ms (communicators must be created on all ranks)";
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
}

// MPI_User_function for bf16 sums: inout = bf16(in + inout), each element added in fp32.
void bf16_sum(void* in, void* inout, int* len, MPI_Datatype*) {
  const auto n = static_cast<size_t>(*len);
  add_bf16({static_cast<const BFloat16*>(in), n}, {static_cast<BFloat16*>(inout), n});
}

}  // namespace

struct MpiCommunicator::Impl {
  std::unique_ptr<MpiRuntime> runtime;  // initialises MPI if nobody has (see mpi_runtime.h)
  MPI_Comm data = MPI_COMM_NULL;        // collectives
  MPI_Comm fingerprints = MPI_COMM_NULL;
  std::unique_ptr<FingerprintExchange> exchange;
  MPI_Op bf16_sum = MPI_OP_NULL;
  std::unique_ptr<CollectiveQueue> queue;  // destroyed first: drains before the comms are freed
};

MpiCommunicator::MpiCommunicator(CommOptions options)
    : options_(options), impl_(std::make_unique<Impl>()) {
  impl_->runtime = std::make_unique<MpiRuntime>();
  if (g_live_communicators.fetch_add(1) > 0 && !MpiRuntime::thread_multiple()) {
    g_live_communicators.fetch_sub(1);
    LOCKSTEP_FAIL_IF(true) << "a second MPI communicator needs MPI_THREAD_MULTIPLE, which this MPI "
                              "does not offer";
  }
  try {
    dup_world(&impl_->data, options_.timeout);
    dup_world(&impl_->fingerprints, options_.timeout);
  } catch (...) {
    g_live_communicators.fetch_sub(1);
    throw;
  }
  MPI_Comm_set_errhandler(impl_->data, MPI_ERRORS_RETURN);
  MPI_Comm_set_errhandler(impl_->fingerprints, MPI_ERRORS_RETURN);
  LOCKSTEP_CHECK(MPI_Op_create(&bf16_sum, /*commute=*/1, &impl_->bf16_sum) == MPI_SUCCESS);
  MPI_Comm_rank(impl_->data, &rank_);
  MPI_Comm_size(impl_->data, &size_);
  impl_->exchange = std::make_unique<FingerprintExchange>(impl_->fingerprints, rank_, size_);
  impl_->queue = std::make_unique<CollectiveQueue>(
      options_, [exchange = impl_->exchange.get()](const Fingerprint& fp,
                                                   std::chrono::milliseconds timeout) {
        exchange->check(fp, timeout);
      });
}

MpiCommunicator::~MpiCommunicator() {
  const bool stuck = impl_->queue->stuck();
  impl_->queue.reset();
  if (!stuck) {  // a stuck thread may still be inside MPI on these comms
    MPI_Comm_free(&impl_->data);
    MPI_Comm_free(&impl_->fingerprints);
    MPI_Op_free(&impl_->bf16_sum);
    impl_->exchange.reset();
    impl_->runtime.reset();
  } else {
    // The detached thread still uses impl_ and MPI: leak both rather than finalize under it.
    impl_->runtime.release();
    impl_.release();
  }
  g_live_communicators.fetch_sub(1);
}

template <typename T>
Work MpiCommunicator::all_reduce_impl(std::span<T> buf, ReduceOp op) {
  const Fingerprint fp = issue({.count = buf.size(),
                                .op = op,
                                .kind = CollectiveKind::kAllReduce,
                                .dtype = std::is_same_v<T, float> ? DType::kFloat32 : DType::kFloat64});
  const MPI_Datatype type = std::is_same_v<T, float> ? MPI_FLOAT : MPI_DOUBLE;
  const MPI_Comm comm = impl_->data;
  const int n = size_;
  return impl_->queue->submit(fp, [=] {
    for (size_t off = 0; off < buf.size(); off += kChunk) {
      const int count = int(std::min(kChunk, buf.size() - off));
      mpi_ok(MPI_Allreduce(MPI_IN_PLACE, buf.data() + off, count, type, mpi_op(op), comm),
             "MPI_Allreduce", fp);
    }
    if (op == ReduceOp::kAverage) {
      const T scale = T(1) / T(n);
      for (T& v : buf) v *= scale;
    }
  });
}

Work MpiCommunicator::all_reduce(std::span<float> buf, ReduceOp op) { return all_reduce_impl(buf, op); }
Work MpiCommunicator::all_reduce(std::span<double> buf, ReduceOp op) { return all_reduce_impl(buf, op); }

Work MpiCommunicator::all_reduce_bf16(std::span<BFloat16> buf, ReduceOp op) {
  LOCKSTEP_CHECK(op == ReduceOp::kSum || op == ReduceOp::kAverage) << "all_reduce_bf16: sum or average only";
  const Fingerprint fp = issue({.count = buf.size(), .op = op, .kind = CollectiveKind::kAllReduce,
                                .dtype = DType::kBFloat16});
  const MPI_Comm comm = impl_->data;
  const MPI_Op sum = impl_->bf16_sum;
  const int n = size_;
  return impl_->queue->submit(fp, [=] {
    for (size_t off = 0; off < buf.size(); off += kChunk) {
      const int count = int(std::min(kChunk, buf.size() - off));
      mpi_ok(MPI_Allreduce(MPI_IN_PLACE, buf.data() + off, count, MPI_UINT16_T, sum, comm), "MPI_Allreduce", fp);
    }
    if (op == ReduceOp::kAverage) {
      const float scale = 1.f / float(n);
      for (BFloat16& v : buf) v = to_bf16(from_bf16(v) * scale);
    }
  });
}

Work MpiCommunicator::broadcast(std::span<std::byte> buf, int root) {
  LOCKSTEP_CHECK(root >= 0 && root < size_) << "broadcast root " << root << " of " << size_ << " ranks";
  const Fingerprint fp = issue(
      {.count = buf.size(), .root = root, .kind = CollectiveKind::kBroadcast, .dtype = DType::kByte});
  const MPI_Comm comm = impl_->data;
  return impl_->queue->submit(fp, [=] {
    for (size_t off = 0; off < buf.size(); off += kChunk) {
      const int count = int(std::min(kChunk, buf.size() - off));
      mpi_ok(MPI_Bcast(buf.data() + off, count, MPI_BYTE, root, comm), "MPI_Bcast", fp);
    }
  });
}

template <typename T>
Work MpiCommunicator::all_gather_impl(std::span<const T> in, std::span<T> out) {
  constexpr bool kFloat = std::is_same_v<T, float>;
  const char* unit = kFloat ? "floats" : "bytes";
  LOCKSTEP_CHECK(out.size() == in.size() * size_)
      << "all_gather: out holds " << out.size() << " " << unit << ", needs " << size_ << " x " << in.size();
  LOCKSTEP_CHECK(in.size() <= size_t(INT_MAX)) << "all_gather of " << in.size() << " " << unit << " per rank";
  const Fingerprint fp = issue({.count = in.size(),
                                .kind = CollectiveKind::kAllGather,
                                .dtype = kFloat ? DType::kFloat32 : DType::kByte});
  const MPI_Datatype type = kFloat ? MPI_FLOAT : MPI_BYTE;
  const MPI_Comm comm = impl_->data;
  const bool in_place = in.data() == out.data() + size_t(rank_) * in.size();
  return impl_->queue->submit(fp, [=] {
    const int count = int(in.size());
    mpi_ok(MPI_Allgather(in_place ? MPI_IN_PLACE : in.data(), count, type, out.data(), count, type, comm),
           "MPI_Allgather", fp);
  });
}

Work MpiCommunicator::all_gather(std::span<const float> in, std::span<float> out) {
  return all_gather_impl(in, out);
}
Work MpiCommunicator::all_gather(std::span<const std::byte> in, std::span<std::byte> out) {
  return all_gather_impl(in, out);
}

Work MpiCommunicator::barrier() {
  const Fingerprint fp = issue({.kind = CollectiveKind::kBarrier});
  const MPI_Comm comm = impl_->data;
  const bool checked = options_.check_fingerprints;
  return impl_->queue->submit(fp, [=] {
    // A completed fingerprint exchange already proved every rank arrived.
    if (!checked) mpi_ok(MPI_Barrier(comm), "MPI_Barrier", fp);
  });
}

void MpiCommunicator::abort(int code) { mpi_abort(code); }

}  // namespace lockstep
