// JobSpec -> DistributedSamplerOptions, with the one remainder rule.
#include "launcher/job_sampler.h"

#include "runtime/check.h"

namespace lockstep {

RemainderPolicy remainder_policy(const proto::JobSpec& job, const std::string& path) {
  const auto& d = job.data();
  const auto& dist = job.distributed();
  if (dist.has_remainder()) {
    const bool pad = dist.remainder() == proto::DistributedSpec::PAD;
    LOCKSTEP_FAIL_IF(d.has_drop_last() && d.drop_last() == pad)
        << path << ": data.drop_last: " << (d.drop_last() ? "true" : "false") << " contradicts distributed.remainder: "
        << proto::DistributedSpec::Remainder_Name(dist.remainder()) << "; set one of them";
    return pad ? RemainderPolicy::kPad : RemainderPolicy::kDropLast;
  }
  if (d.has_drop_last() && !d.drop_last()) return RemainderPolicy::kPad;
  return RemainderPolicy::kDropLast;
}

DistributedSamplerOptions sampler_options(const proto::JobSpec& job, int rank, int world) {
  const auto& d = job.data();
  return DistributedSamplerOptions{.global_batch = job.batch_size(), .rank = rank, .world = world,
                                   .shuffle = !d.has_shuffle() || d.shuffle(), .seed = job.seed(),
                                   .remainder = remainder_policy(job)};
}

InputOptions input_options(const proto::JobSpec& job) {
  const auto& d = job.data();
  return InputOptions{.augment = {.crop_padding = d.augment().random_crop_padding(),
                                  .horizontal_flip = d.augment().horizontal_flip(),
                                  .seed = job.seed()},
                      .prefetch_batches = d.has_prefetch_batches() ? d.prefetch_batches() : 2};
}

}  // namespace lockstep
