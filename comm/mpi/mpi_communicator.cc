// MpiCommunicator: fingerprint-checked MPI collectives run in order on a communication thread.
#include "comm/mpi/mpi_communicator.h"

#include <mpi.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <thread>
#include <type_traits>

#include "comm/comm_thread.h"
#include "comm/fingerprint.h"
#include "comm/mpi/fingerprint_exchange.h"
#include "comm/mpi/mpi_runtime.h"
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

}  // namespace

struct MpiCommunicator::Impl {
  std::unique_ptr<MpiRuntime> runtime;  // initialises MPI if nobody has (see mpi_runtime.h)
  MPI_Comm data = MPI_COMM_NULL;        // collectives
  MPI_Comm fingerprints = MPI_COMM_NULL;
  std::unique_ptr<FingerprintExchange> exchange;
  std::unique_ptr<CommThread> thread;  // destroyed first: drains before the comms are freed

  // Runs on the communication thread.
  void check(const Fingerprint& fp, const CommOptions& options) {
    if (options.check_fingerprints) exchange->check(fp, options.timeout);
  }
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
  MPI_Comm_rank(impl_->data, &rank_);
  MPI_Comm_size(impl_->data, &size_);
  impl_->exchange = std::make_unique<FingerprintExchange>(impl_->fingerprints, rank_, size_);
  // A transport call stuck for two timeouts plus slack means a rank died mid-collective.
  impl_->thread = std::make_unique<CommThread>(2 * options_.timeout + std::chrono::seconds(10));
}

MpiCommunicator::~MpiCommunicator() {
  const bool stuck = impl_->thread->stuck();
  impl_->thread.reset();
  if (!stuck) {  // a stuck thread may still be inside MPI on these comms
    MPI_Comm_free(&impl_->data);
    MPI_Comm_free(&impl_->fingerprints);
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
  Fingerprint fp;
  fp.seq = next_seq();
  fp.kind = CollectiveKind::kAllReduce;
  fp.op = op;
  fp.dtype = std::is_same_v<T, float> ? DType::kFloat32 : DType::kFloat64;
  fp.count = buf.size();
  fp.phase = phase();
  fp.mode = mode();
  const MPI_Datatype type = std::is_same_v<T, float> ? MPI_FLOAT : MPI_DOUBLE;
  Impl* impl = impl_.get();
  const CommOptions options = options_;
  const int n = size_;
  return impl->thread->submit("collective #" + std::to_string(fp.seq) + " " + describe(fp),
                              [=] {
    impl->check(fp, options);
    for (size_t off = 0; off < buf.size(); off += kChunk) {
      const int count = int(std::min(kChunk, buf.size() - off));
      mpi_ok(MPI_Allreduce(MPI_IN_PLACE, buf.data() + off, count, type, mpi_op(op), impl->data),
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

Work MpiCommunicator::broadcast(std::span<std::byte> buf, int root) {
  LOCKSTEP_CHECK(root >= 0 && root < size_) << "broadcast root " << root << " of " << size_ << " ranks";
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
  return impl->thread->submit("collective #" + std::to_string(fp.seq) + " " + describe(fp), [=] {
    impl->check(fp, options);
    for (size_t off = 0; off < buf.size(); off += kChunk) {
      const int count = int(std::min(kChunk, buf.size() - off));
      mpi_ok(MPI_Bcast(buf.data() + off, count, MPI_BYTE, root, impl->data), "MPI_Bcast", fp);
    }
  });
}

Work MpiCommunicator::all_gather(std::span<const float> in, std::span<float> out) {
  LOCKSTEP_CHECK(out.size() == in.size() * size_)
      << "all_gather: out holds " << out.size() << " floats, needs " << size_ << " x " << in.size();
  LOCKSTEP_CHECK(in.size() <= size_t(INT_MAX)) << "all_gather of " << in.size() << " floats per rank";
  Fingerprint fp;
  fp.seq = next_seq();
  fp.kind = CollectiveKind::kAllGather;
  fp.dtype = DType::kFloat32;
  fp.count = in.size();
  fp.phase = phase();
  fp.mode = mode();
  Impl* impl = impl_.get();
  const CommOptions options = options_;
  const bool in_place = in.data() == out.data() + size_t(rank_) * in.size();
  return impl->thread->submit("collective #" + std::to_string(fp.seq) + " " + describe(fp), [=] {
    impl->check(fp, options);
    const int count = int(in.size());
    mpi_ok(MPI_Allgather(in_place ? MPI_IN_PLACE : in.data(), count, MPI_FLOAT, out.data(), count,
                         MPI_FLOAT, impl->data),
           "MPI_Allgather", fp);
  });
}

Work MpiCommunicator::barrier() {
  Fingerprint fp;
  fp.seq = next_seq();
  fp.kind = CollectiveKind::kBarrier;
  fp.phase = phase();
  fp.mode = mode();
  Impl* impl = impl_.get();
  const CommOptions options = options_;
  return impl->thread->submit("collective #" + std::to_string(fp.seq) + " " + describe(fp), [=] {
    impl->check(fp, options);
    // A completed fingerprint exchange already proved every rank arrived.
    if (!options.check_fingerprints) mpi_ok(MPI_Barrier(impl->data), "MPI_Barrier", fp);
  });
}

void MpiCommunicator::abort(int code) { mpi_abort(code); }

}  // namespace lockstep
