// Autocast precision: the thread-local state behind AutocastGuard.
#include "runtime/precision.h"

namespace lockstep {

namespace {
thread_local Precision current = Precision::kFP32;
}  // namespace

const char* precision_name(Precision p) { return p == Precision::kBF16 ? "BF16" : "FP32"; }

Precision autocast_precision() { return current; }

AutocastGuard::AutocastGuard(Precision p) : previous_(current) { current = p; }
AutocastGuard::~AutocastGuard() { current = previous_; }

}  // namespace lockstep
