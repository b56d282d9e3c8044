// FingerprintExchange: all-to-all nonblocking fingerprint messages polled against a deadline.
#include "comm/mpi/fingerprint_exchange.h"

#include <thread>

#include "runtime/check.h"

namespace lockstep {
namespace {
constexpr int kTag = 7031;
// After a mismatch, wait this long for the other ranks' fingerprints so the message is complete.
constexpr std::chrono::milliseconds kMismatchGrace{1000};
constexpr std::chrono::microseconds kSpin{300};
}  // namespace

FingerprintExchange::FingerprintExchange(MPI_Comm comm, int rank, int size)
    : comm_(comm), rank_(rank), size_(size) {}

FingerprintExchange::~FingerprintExchange() = default;

void FingerprintExchange::check(const Fingerprint& mine, std::chrono::milliseconds timeout) {
  if (size_ == 1) return;
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  auto deadline = start + timeout;

  auto sendbuf = std::make_unique<Fingerprint>(mine);
  std::vector<Fingerprint> theirs(size_);
  std::vector<MPI_Request> recvs(size_, MPI_REQUEST_NULL), sends(size_, MPI_REQUEST_NULL);
  for (int p = 0; p < size_; ++p) {
    if (p == rank_) continue;
    LOCKSTEP_CHECK(MPI_Irecv(&theirs[p], sizeof(Fingerprint), MPI_BYTE, p, kTag, comm_, &recvs[p]) ==
                   MPI_SUCCESS);
  }
  for (int p = 0; p < size_; ++p) {
    if (p == rank_) continue;
    LOCKSTEP_CHECK(MPI_Isend(sendbuf.get(), sizeof(Fingerprint), MPI_BYTE, p, kTag, comm_,
                             &sends[p]) == MPI_SUCCESS);
  }

  Arrivals arrivals(size_);
  arrivals[rank_] = mine;
  int arrived = 1;
  bool mismatch = false;
  std::vector<int> done(size_);
  for (;;) {
    int ndone = 0;
    LOCKSTEP_CHECK(MPI_Testsome(size_, recvs.data(), &ndone, done.data(), MPI_STATUSES_IGNORE) ==
                   MPI_SUCCESS);
    if (ndone != MPI_UNDEFINED) {
      for (int i = 0; i < ndone; ++i) {
        arrivals[done[i]] = theirs[done[i]];
        ++arrived;
        if (!(theirs[done[i]] == mine) && !mismatch) {
          mismatch = true;
          deadline = std::min(deadline, clock::now() + kMismatchGrace);
        }
      }
    }
    if (arrived == size_) break;
    if (clock::now() > deadline) break;
    // Poll, yielding the core, for the first kSpin (a peer a little late), then sleep between
    // polls: a spinning comm thread would take the core from this rank's own compute thread,
    // which on a machine with one core per rank is what backward runs on while a bucket waits.
    const auto waited = clock::now() - start;
    if (waited < kSpin) std::this_thread::yield();
    else std::this_thread::sleep_for(waited < 100 * kSpin ? std::chrono::microseconds(50)
                                                          : std::chrono::microseconds(500));
  }

  if (arrived == size_ && !mismatch) {
    LOCKSTEP_CHECK(MPI_Waitall(size_, sends.data(), MPI_STATUSES_IGNORE) == MPI_SUCCESS);
    return;
  }
  // Failure: withdraw the receives still posted; abandon sends (their peers may never take them).
  for (int p = 0; p < size_; ++p) {
    if (recvs[p] != MPI_REQUEST_NULL) {
      MPI_Cancel(&recvs[p]);
      MPI_Wait(&recvs[p], MPI_STATUS_IGNORE);
    }
    if (sends[p] != MPI_REQUEST_NULL) MPI_Request_free(&sends[p]);
  }
  orphans_.push_back(std::move(sendbuf));
  if (mismatch) throw Error(mismatch_message(arrivals, rank_));
  throw Error(timeout_message(arrivals, rank_, timeout));
}

}  // namespace lockstep
