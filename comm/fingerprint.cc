// Fingerprint descriptions and the mismatch / timeout messages every rank builds identically.
#include "comm/fingerprint.h"

#include <sstream>

namespace lockstep {
namespace {

const char* op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum: return "sum";
    case ReduceOp::kAverage: return "average";
    case ReduceOp::kMax: return "max";
    case ReduceOp::kMin: return "min";
  }
  return "?";
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::kFloat32: return "floats";
    case DType::kFloat64: return "doubles";
    case DType::kByte: return "bytes";
    case DType::kBFloat16: return "bfloat16s";
    case DType::kNone: return "elements";
  }
  return "?";
}

const char* mode_name(CommMode m) {
  switch (m) {
    case CommMode::kTrain: return "train";
    case CommMode::kEval: return "eval";
    case CommMode::kNone: return "no mode";
  }
  return "?";
}

std::string rank_list(const std::vector<int>& ranks) {
  std::ostringstream os;
  os << (ranks.size() == 1 ? "rank " : "ranks ");
  for (size_t i = 0; i < ranks.size(); ++i) os << (i ? "," : "") << ranks[i];
  return os.str();
}

}  // namespace

std::string describe(const Fingerprint& fp, bool with_seq) {
  std::ostringstream os;
  if (with_seq) os << "#" << fp.seq << " ";
  const std::string tail = std::string(mode_name(fp.mode)) + ", phase " + std::to_string(fp.phase);
  switch (fp.kind) {
    case CollectiveKind::kAllReduce:
      os << "all_reduce(" << op_name(fp.op) << ", " << fp.count << " " << dtype_name(fp.dtype)
         << ", " << tail << ")";
      break;
    case CollectiveKind::kBroadcast:
      os << "broadcast(root " << fp.root << ", " << fp.count << " " << dtype_name(fp.dtype) << ", "
         << tail << ")";
      break;
    case CollectiveKind::kAllGather:
      os << "all_gather(" << fp.count << " " << dtype_name(fp.dtype) << " per rank, " << tail << ")";
      break;
    case CollectiveKind::kBarrier:
      os << "barrier(" << tail << ")";
      break;
    default:
      os << "unknown collective " << int(fp.kind);
  }
  return os.str();
}

bool all_agree(const Arrivals& arrivals) {
  for (const auto& a : arrivals)
    if (!a || !(*a == *arrivals.front())) return false;
  return true;
}

std::string mismatch_message(const Arrivals& arrivals, int me) {
  // Group ranks by identical fingerprint, in order of each group's lowest rank.
  std::vector<Fingerprint> kinds;
  std::vector<std::vector<int>> groups;
  std::vector<int> missing;
  for (int r = 0; r < int(arrivals.size()); ++r) {
    if (!arrivals[r]) {
      missing.push_back(r);
      continue;
    }
    size_t g = 0;
    while (g < kinds.size() && !(kinds[g] == *arrivals[r])) ++g;
    if (g == kinds.size()) {
      kinds.push_back(*arrivals[r]);
      groups.emplace_back();
    }
    groups[g].push_back(r);
  }
  bool seqs_differ = false;
  for (const auto& k : kinds) seqs_differ |= k.seq != kinds.front().seq;
  std::ostringstream os;
  os << "collective #" << arrivals[me]->seq << " mismatch: ";
  for (size_t g = 0; g < groups.size(); ++g)
    os << (g ? " but " : "") << rank_list(groups[g]) << " " << describe(kinds[g], seqs_differ);
  if (!missing.empty()) os << "; " << rank_list(missing) << " had not arrived";
  return os.str();
}

std::string timeout_message(const Arrivals& arrivals, int me, std::chrono::milliseconds timeout) {
  std::vector<int> missing, present;
  for (int r = 0; r < int(arrivals.size()); ++r) (arrivals[r] ? present : missing).push_back(r);
  std::ostringstream os;
  os << "collective #" << arrivals[me]->seq << " " << describe(*arrivals[me]) << " timed out after "
     << timeout.count() << " ms on rank " << me << ": " << rank_list(missing)
     << " never arrived (arrived: " << rank_list(present) << ")";
  return os.str();
}

}  // namespace lockstep
