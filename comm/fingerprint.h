// Fingerprint of one collective: what every rank must agree on before data moves (op, dtype,
// element count, sequence number, mode, phase; see communicator.h). Backends exchange these, and
// every rank builds the same error text from the same fingerprints, so all ranks name the same
// culprits.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "comm/communicator.h"

namespace lockstep {

enum class CollectiveKind : uint8_t { kAllReduce = 1, kBroadcast = 2, kAllGather = 3, kBarrier = 4 };
enum class DType : uint8_t { kNone = 0, kFloat32 = 1, kFloat64 = 2, kByte = 3, kBFloat16 = 4 };

// Sent as raw bytes between ranks: fixed layout, no padding, all fields compared.
struct Fingerprint {
  uint64_t seq = 0;
  uint64_t count = 0;  // elements (per rank for all_gather)
  uint32_t phase = 0;
  int32_t root = -1;  // broadcast only
  ReduceOp op = ReduceOp::kSum;  // all_reduce only
  CollectiveKind kind = CollectiveKind::kBarrier;
  DType dtype = DType::kNone;
  CommMode mode = CommMode::kNone;
  uint8_t reserved = 0;

  bool operator==(const Fingerprint&) const = default;
};
static_assert(std::is_trivially_copyable_v<Fingerprint> && sizeof(Fingerprint) == 32);

// "all_reduce(sum, 128 floats, train, phase 3)"; with_seq prefixes "#12 ".
std::string describe(const Fingerprint& fp, bool with_seq = false);

// Every rank's fingerprint for one collective; nullopt for a rank that has not arrived.
using Arrivals = std::vector<std::optional<Fingerprint>>;

// "collective #12 mismatch: rank 0 all_reduce(sum, 128 floats, train, phase 3) but rank 1
// all_reduce(sum, 256 floats, eval, phase 3)", ranks grouped by identical fingerprints.
std::string mismatch_message(const Arrivals& arrivals, int me);
// "collective #12 all_reduce(...) timed out after 2000 ms on rank 0: rank 1 never arrived".
std::string timeout_message(const Arrivals& arrivals, int me, std::chrono::milliseconds timeout);
// True when every rank arrived and all fingerprints are equal.
bool all_agree(const Arrivals& arrivals);

}  // namespace lockstep
