// FingerprintExchange: checks one collective's fingerprint across the ranks of an MPI
// communicator before data moves. Every rank sends its fingerprint to every other rank with
// nonblocking point-to-point messages and polls for the others' until a deadline, so it can tell
// exactly which ranks never arrived (a collective-based check could not). A completed exchange is
// also a barrier. Cost: 2(n-1) 32-byte messages per rank per collective. Call from one thread.
// Internal to the MPI-based backends (includes <mpi.h>).
#pragma once

#include <chrono>
#include <memory>
#include <vector>

#include <mpi.h>

#include "comm/fingerprint.h"

namespace lockstep {

class FingerprintExchange {
 public:
  // `comm` points at an MPI_Comm used only for fingerprints (so they never match data messages).
  FingerprintExchange(MPI_Comm comm, int rank, int size);
  ~FingerprintExchange();
  FingerprintExchange(const FingerprintExchange&) = delete;
  FingerprintExchange& operator=(const FingerprintExchange&) = delete;

  // Returns when every rank arrived with an equal fingerprint; otherwise throws Error with the
  // mismatch (after collecting what arrives within a short grace) or the ranks that never arrived.
  void check(const Fingerprint& mine, std::chrono::milliseconds timeout);

 private:
  MPI_Comm comm_;
  int rank_, size_;
  // Sends abandoned after a failure: their buffers must outlive them (freed requests).
  std::vector<std::unique_ptr<Fingerprint>> orphans_;
};

}  // namespace lockstep
