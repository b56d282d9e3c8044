// validate_state: every field of a checkpoint's state.pb against the resuming run (see the header).
#include "runtime/checkpoint/checkpoint_validate.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <set>
#include <utility>

#include "runtime/check.h"
#include "runtime/philox.h"

namespace lockstep {

int64_t rng_consumer_index(const std::string& consumer) {
  constexpr std::string_view kPrefix = "dropout.";
  if (consumer.rfind(kPrefix, 0) != 0 || consumer.size() == kPrefix.size()) return -1;
  int64_t i = -1;
  const char* end = consumer.data() + consumer.size();
  const auto [at, ec] = std::from_chars(consumer.data() + kPrefix.size(), end, i);
  if (ec != std::errc() || at != end || i < 0) return -1;
  return i;
}

void check_world_size(int64_t saved, int64_t now, int64_t batch_size, const std::string& dir) {
  if (saved == now || now < 1 || batch_size < 1) return;
  LOCKSTEP_FAIL_IF(batch_size % now != 0)
      << "checkpoint " << dir << " was written by " << saved << " ranks; resuming on " << now
      << " ranks needs batch_size (the global batch, " << batch_size << ") to be a multiple of " << now
      << "; choose a number of ranks that divides it";
}

void validate_state(const proto::CheckpointState& s, const ResumeLimits& l, const std::string& dir) {
  const std::string at = "checkpoint " + dir + ": state.pb: ";
  LOCKSTEP_FAIL_IF(s.world_size() < 1) << at << "world_size: must be at least 1, got " << s.world_size();
  check_world_size(s.world_size(), l.world_size, l.batch_size, dir);
  const int64_t saved_world = s.world_size();  // the rng records are the writer's ranks
  LOCKSTEP_FAIL_IF(s.epoch() < 0 || (l.epochs >= 0 && s.epoch() > l.epochs))
      << at << "epoch: must be in [0, " << (l.epochs >= 0 ? std::to_string(l.epochs) : "epochs") << "], got "
      << s.epoch();
  const int64_t steps = l.steps_per_epoch;
  LOCKSTEP_FAIL_IF(s.epoch_step() < 0 || (steps >= 0 && s.epoch_step() >= steps))
      << at << "epoch_step: must be in [0, " << (steps >= 0 ? std::to_string(steps) : "steps per epoch")
      << "), got " << s.epoch_step();
  LOCKSTEP_FAIL_IF(l.epochs >= 0 && s.epoch() == l.epochs && s.epoch_step() != 0)
      << at << "epoch_step: must be 0 after the last epoch (" << l.epochs << "), got " << s.epoch_step();
  const int64_t k = std::max<int64_t>(l.accumulate_steps, 1);
  LOCKSTEP_FAIL_IF(s.epoch_step() % k != 0)
      << at << "epoch_step: must be a multiple of accumulate_steps " << k
      << " (checkpoints are taken between optimizer steps), got " << s.epoch_step();
  if (steps >= 0) {
    // epoch * (steps / k) + epoch_step / k cannot overflow: both are bounded above.
    const uint64_t expect = static_cast<uint64_t>(s.epoch()) * static_cast<uint64_t>(steps / k) +
                            static_cast<uint64_t>(s.epoch_step() / k);
    LOCKSTEP_FAIL_IF(s.step() != expect)
        << at << "step: epoch " << s.epoch() << " micro-batch " << s.epoch_step() << " of " << steps
        << " per epoch" << (k > 1 ? " at " + std::to_string(k) + " per optimizer step" : std::string())
        << " is step " << expect << ", got " << s.step();
  }
  LOCKSTEP_FAIL_IF(s.optimizer_steps() < 0 || static_cast<uint64_t>(s.optimizer_steps()) > s.step())
      << at << "optimizer_steps: must be in [0, step " << s.step() << "], got " << s.optimizer_steps();
  LOCKSTEP_FAIL_IF(!std::isfinite(s.lr()) || s.lr() < 0) << at << "lr: must be finite and >= 0, got " << s.lr();
  LOCKSTEP_FAIL_IF(!std::isfinite(s.epoch_loss_sum()))
      << at << "epoch_loss_sum: must be finite, got " << s.epoch_loss_sum();
  LOCKSTEP_FAIL_IF(!std::isfinite(s.epoch_samples()) || s.epoch_samples() < 0)
      << at << "epoch_samples: must be finite and >= 0, got " << s.epoch_samples();

  std::set<std::pair<int32_t, int64_t>> seen;
  for (int i = 0; i < s.rng_size(); ++i) {
    const proto::RngRecord& r = s.rng(i);
    const std::string rec = at + "rng[" + std::to_string(i) + "].";
    const int64_t layer = rng_consumer_index(r.consumer());
    LOCKSTEP_FAIL_IF(layer < 0) << rec << "consumer: expected \"dropout.<layer>\", got \"" << r.consumer() << "\"";
    LOCKSTEP_FAIL_IF(l.rng_consumers >= 0 && layer >= l.rng_consumers)
        << rec << "consumer: \"" << r.consumer() << "\", but the model has " << l.rng_consumers
        << " dropout layers";
    LOCKSTEP_FAIL_IF(r.rank() < 0 || r.rank() >= saved_world)
        << rec << "rank: must be in [0, " << saved_world << "), got " << r.rank();
    LOCKSTEP_FAIL_IF(!seen.insert({r.rank(), layer}).second)
        << rec << "consumer: \"" << r.consumer() << "\" of rank " << r.rank() << " appears twice";
    const auto stream = static_cast<RngStream>(r.stream());
    LOCKSTEP_FAIL_IF(stream != RngStream::kInit && stream != RngStream::kDropout && stream != RngStream::kShuffle &&
                     stream != RngStream::kTest)
        << rec << "stream: unknown stream " << r.stream();
  }
  if (l.rng_consumers >= 0) {
    LOCKSTEP_FAIL_IF(static_cast<int64_t>(seen.size()) != saved_world * l.rng_consumers)
        << at << "rng: " << seen.size() << " records, expected " << saved_world * l.rng_consumers << " ("
        << saved_world << " ranks x " << l.rng_consumers << " dropout layers)";
  }
}

}  // namespace lockstep
