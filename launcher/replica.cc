// A job and a communicator -> one rank's replica.
#include "launcher/replica.h"

#include <cstdio>

#include "launcher/init_weights.h"
#include "launcher/job_file.h"
#include "launcher/job_sampler.h"
#include "layers/dropout.h"
#include "layers/sync_batch_norm.h"
#include "runtime/gemm.h"

namespace lockstep {

std::unique_ptr<Replica> build_replica(const proto::JobSpec& job, Communicator& comm) {
  const auto& d = job.data();
  const auto& dist = job.distributed();
  set_kernel_threads(job.threads() > 0 ? job.threads() : 1);
  const Precision precision = precision_of(job);
  const std::string unsupported = precision_unsupported(precision);
  LOCKSTEP_FAIL_IF(!unsupported.empty()) << "precision: " << unsupported;
  auto r = std::make_unique<Replica>();
  const float mean = d.has_mean() ? d.mean() : 0.2860f, stdv = d.has_std() ? d.std() : 0.3530f;
  r->train_set = load_fashion_mnist(d.dir(), true, mean, stdv);
  r->test_set = load_fashion_mnist(d.dir(), false, mean, stdv);
  r->built = build_model(job);
  Module& model = *r->built.model;
  check_model_input(r->built, r->train_set);
  load_init_from(job, model, [&](const std::string& note) {
    if (comm.rank() == 0) std::fprintf(stderr, "lockstep: %s\n", note.c_str());
  });
  if (comm.size() > 1 && dist.sync_batchnorm()) convert_sync_batchnorm(model, comm);  // before the optimizer
  const bool per_sample = dist.dropout_keying() == proto::DistributedSpec::PER_SAMPLE;
  seed_dropout(model, job.seed(), static_cast<uint32_t>(comm.rank()),
               per_sample ? DropoutKeying::kPerSample : DropoutKeying::kPerRank);
  r->opt = build_optimizer(job, model);
  r->schedule = build_schedule(job);
  r->sampler = std::make_unique<DistributedSampler>(r->train_set.size(), sampler_options(job, comm.rank(), comm.size()));
  check_schedule_horizon(job, r->sampler->num_steps());
  r->dopt = DistributedOptions{.comm = &comm,
                               .eval_buffers = dist.eval_buffers() == proto::DistributedSpec::AVERAGE
                                                   ? BufferSync::kAverage
                                                   : BufferSync::kBroadcast,
                               .per_sample_dropout = per_sample};
  r->dopt.reducer.find_unused_parameters = dist.find_unused_parameters();
  if (dist.comm_hook() == proto::DistributedSpec::BF16_COMPRESS_HOOK)
    r->dopt.reducer.comm_hook = CommHook::kBf16Compress;
  if (dist.has_bucket_mb()) r->dopt.reducer.bucket_bytes = static_cast<int64_t>(dist.bucket_mb() * (1 << 20));
  if (dist.has_chunk_mb()) r->dopt.reducer.chunk_bytes = static_cast<int64_t>(dist.chunk_mb() * (1 << 20));
  r->trainer = std::make_unique<Trainer>(
      model, *r->opt, r->loss, r->schedule.get(),
      TrainerOptions{.epochs = job.epochs(),
                     .eval_batch_size = job.eval_batch_size() ? job.eval_batch_size() : 1000,
                     .sample_shape = r->built.sample_shape,
                     .on_nonfinite = job.on_nonfinite() == proto::JobSpec::NONFINITE_SKIP_STEP
                                         ? NonFiniteAction::kSkipStep
                                         : NonFiniteAction::kStop,
                     .memory_format = job.model().memory_format() == proto::ModelSpec::CONTIGUOUS
                                          ? MemoryFormat::kContiguous
                                          : MemoryFormat::kChannelsLast,
                     .precision = precision,
                     .accumulate_steps = job.has_accumulate_steps() ? job.accumulate_steps() : 1,
                     .clip = GradClip{.max_norm = job.clip_grad().max_norm(),
                                      .norm_type = job.clip_grad().has_norm_type() ? job.clip_grad().norm_type() : 2.0,
                                      .clip_value = job.clip_grad().clip_value()},
                     .schedule_interval = job.schedule().interval() == proto::ScheduleSpec::STEP
                                              ? ScheduleInterval::kStep
                                              : ScheduleInterval::kEpoch,
                     .top_k = eval_top_k(job),
                     .input = input_options(job)},
      r->dopt);
  return r;
}

}  // namespace lockstep
