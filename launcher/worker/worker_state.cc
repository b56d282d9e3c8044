// Checkpoint save/restore for a data-parallel job: rank 0 does the I/O, the communicator carries
// RNG states, position and tensors.
#include "launcher/worker/worker_state.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <zlib.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <type_traits>
#include <vector>

#include "comm/model_sync.h"
#include "layers/dropout.h"
#include "runtime/check.h"
#include "runtime/checkpoint/checkpoint.h"
#include "runtime/checkpoint/checkpoint_validate.h"
#include "launcher/resume_check.h"

namespace lockstep {
namespace {

// One RNG consumer's state as it travels between ranks (every rank runs the same binary): gathered
// as bytes at a save, broadcast as bytes at a restore.
struct RngWire {
  uint64_t seed = 0, step = 0;
  uint32_t rank = 0, stream = 0;
};
static_assert(std::is_trivially_copyable_v<RngWire> && sizeof(RngWire) == 24);

RngWire to_wire(const RngState& s) { return {s.seed, s.step, s.rank, static_cast<uint32_t>(s.stream)}; }
RngState from_wire(const RngWire& w) { return {w.seed, w.rank, static_cast<RngStream>(w.stream), w.step}; }

uint64_t u64(double lo, double hi) { return static_cast<uint64_t>(lo) | (static_cast<uint64_t>(hi) << 32); }

// Rank 0's verdict, broadcast: empty when it succeeded, else its error message.
std::string broadcast_verdict(Communicator& comm, const std::string& error) {
  std::vector<std::byte> buf(1024, std::byte{0});
  if (comm.rank() == 0) std::memcpy(buf.data(), error.data(), std::min(error.size(), buf.size() - 1));
  comm.broadcast(buf, 0).wait();
  return std::string(reinterpret_cast<const char*>(buf.data()));
}

std::vector<std::pair<std::string, Tensor*>> model_state(Module& model) { return model.state_dict(); }

// Note [rank-local buffers]: under eval_buffers AVERAGE each rank keeps its own BatchNorm running
// statistics between eval phases (they are averaged only when an eval phase begins), so a checkpoint
// holds every rank's, and a resume gives each rank its own back: the resumed run then continues the
// uninterrupted one exactly. Under BROADCAST only rank 0's ever count.
bool rank_local_buffers(const proto::JobSpec& job, const Communicator& comm) {
  return comm.size() > 1 && job.distributed().eval_buffers() == proto::DistributedSpec::AVERAGE;
}

int64_t buffer_numel(Module& model) {
  int64_t n = 0;
  for (auto& [name, t] : model.named_buffers()) n += t->numel();
  return n;
}

std::string rank_buffer_name(int rank, const std::string& name) { return "rank" + std::to_string(rank) + "/" + name; }

// Note [elastic resume]: a checkpoint written by N ranks resumes on M ranks when the global batch
// B divides by M. Every rank holds the full replica, so weights and optimizer state are rank 0's as
// always. The position (epoch, epoch_step) counts GLOBAL batches, and the sampler cuts global batch s
// of the (seed, epoch) permutation into M shards of B / M, so the M ranks together train on exactly
// the samples the N ranks would have. A dropout layer's counter advances once per train forward on
// every rank alike, so rank 0's counter is every rank's; each new rank r continues it under the key
// (seed, r) that seed_dropout gives rank r. Under per-sample keying the key holds no rank and the
// element index is the sample's row in the global batch, so the M ranks draw exactly the masks the
// N-rank run would have drawn. Rank-local buffers (Note [rank-local buffers]) follow the
// eval-buffer policy: BROADCAST, rank 0's on every rank (all an eval phase would use); AVERAGE, their
// mean over the N saved ranks on every rank (what an eval phase would have computed).
// SyncBatchNorm's running statistics are the same on every rank, so neither policy changes them.

// Rank 0, resuming on another world size under eval_buffers AVERAGE: model.pb's buffers (rank 0's)
// become the mean over the `saved` ranks of the checkpoint (rank_buffers.pb holds ranks 1..saved-1;
// without it, written before they were kept, rank 0's stand). Summed in double: the mean of equal
// values is that value exactly.
void average_saved_buffers(const std::string& dir, const Checkpoint& c, Module& model, int saved) {
  if (saved <= 1 || c.rank_buffers.empty()) return;
  const auto named = model.named_buffers();
  LOCKSTEP_FAIL_IF(c.rank_buffers.size() != static_cast<size_t>(saved - 1) * named.size())
      << "checkpoint " << dir << " rank_buffers.pb: " << c.rank_buffers.size() << " tensors, expected "
      << (saved - 1) * static_cast<int64_t>(named.size()) << " (" << saved - 1 << " ranks x " << named.size()
      << " buffers)";
  for (size_t b = 0; b < named.size(); ++b) {
    const auto& [name, t] = named[b];
    std::vector<double> sum(t->data(), t->data() + t->numel());  // rank 0's, copied from model.pb
    for (int r = 1; r < saved; ++r) {
      const NamedTensor& x = c.rank_buffers[static_cast<size_t>(r - 1) * named.size() + b];
      LOCKSTEP_FAIL_IF(x.name != rank_buffer_name(r, name) || x.tensor.shape() != t->shape())
          << "checkpoint " << dir << " rank_buffers.pb: expected " << rank_buffer_name(r, name) << " of "
          << t->numel() << " values, got " << x.name;
      for (size_t i = 0; i < sum.size(); ++i) sum[i] += x.tensor.data()[i];
    }
    for (size_t i = 0; i < sum.size(); ++i) t->data()[i] = static_cast<float>(sum[i] / saved);
  }
}

}  // namespace

std::string save_checkpoint(Communicator& comm, Module& model, Optimizer& opt, const proto::JobSpec& job,
                            const std::string& run_dir, const JobPosition& pos, uint32_t phase_id) {
  const std::vector<Dropout*> drops = dropout_layers(model);
  const size_t block = drops.size();
  // rng: (world, consumers), rank r's row gathered from rank r.
  std::vector<RngWire> mine(block), rng(block * static_cast<size_t>(comm.size()));
  for (size_t i = 0; i < drops.size(); ++i) mine[i] = to_wire(drops[i]->rng_state());
  if (!rng.empty())
    comm.all_gather(std::as_bytes(std::span(mine)), std::as_writable_bytes(std::span(rng))).wait();
  // buffers: (world, buffer elements), each rank filling its own row; summed = gathered.
  const bool local = rank_local_buffers(job, comm);
  const int64_t nbuf = local ? buffer_numel(model) : 0;
  std::vector<float> buffers(static_cast<size_t>(nbuf) * static_cast<size_t>(comm.size()), 0.f);
  if (nbuf > 0) {
    float* row = buffers.data() + static_cast<size_t>(comm.rank()) * static_cast<size_t>(nbuf);
    for (auto& [name, t] : model.named_buffers()) row = std::copy(t->data(), t->data() + t->numel(), row);
    comm.all_reduce(std::span<float>(buffers), ReduceOp::kSum).wait();
  }

  std::string path, error;
  if (comm.rank() == 0) {
    try {
      Checkpoint c;
      proto::CheckpointState& s = c.state;
      s.set_step(pos.step);
      s.set_epoch(pos.epoch);
      s.set_epoch_step(pos.epoch_step);
      s.set_epoch_loss_sum(pos.epoch_loss_sum);
      s.set_epoch_samples(pos.epoch_samples);
      s.set_job_hash(job_hash(job));
      s.set_world_size(comm.size());
      s.set_optimizer_steps(opt.step_count());
      s.set_lr(opt.lr());
      s.set_phase_id(phase_id);
      *s.mutable_job() = job;
      s.mutable_job()->mutable_data()->set_dir(trajectory_spec(job).data().dir());
      for (int r = 0; r < comm.size(); ++r)
        for (size_t i = 0; i < drops.size(); ++i) {
          const RngWire& f = rng[static_cast<size_t>(r) * block + i];
          proto::RngRecord* rec = s.add_rng();
          rec->set_rank(r);
          rec->set_consumer("dropout." + std::to_string(i));
          rec->set_seed(f.seed);
          rec->set_key_rank(f.rank);
          rec->set_stream(f.stream);
          rec->set_step(f.step);
        }
      c.model = snapshot_tensors(model_state(model));
      // A checkpoint is what a resume trusts: never one with NaN or infinite weights or statistics.
      for (const NamedTensor& t : c.model) {
        const float* v = t.tensor.data();
        for (int64_t i = 0, n = t.tensor.numel(); i < n; ++i)
          LOCKSTEP_FAIL_IF(!std::isfinite(v[i]))
              << "checkpoint at step " << pos.step << " refused: " << t.name << " holds a non-finite value ("
              << v[i] << " at index " << i << "); the previous checkpoints are kept";
      }
      c.optimizer = snapshot_tensors(opt.state_tensors());
      const auto named = model.named_buffers();
      for (int r = 1; r < comm.size() && nbuf > 0; ++r) {
        const float* row = buffers.data() + static_cast<size_t>(r) * static_cast<size_t>(nbuf);
        for (const auto& [name, t] : named) {
          c.rank_buffers.push_back(NamedTensor{
              rank_buffer_name(r, name), Tensor::from(t->shape(), std::span<const float>(row, static_cast<size_t>(t->numel())))});
          row += t->numel();
        }
      }
      const int keep = job.phases().has_keep_checkpoints() ? job.phases().keep_checkpoints() : 2;
      path = write_checkpoint(run_dir, c, keep);
    } catch (const std::exception& e) {
      error = e.what();
      if (error.empty()) error = "checkpoint failed";
    }
  }
  const std::string verdict = broadcast_verdict(comm, error);
  LOCKSTEP_FAIL_IF(!verdict.empty()) << (comm.rank() == 0 ? verdict : "rank 0: " + verdict);
  if (comm.rank() != 0) path = run_dir + "/checkpoints";  // only rank 0 reports the directory
  return path;
}

std::optional<JobPosition> restore_latest(Communicator& comm, Module& model, Optimizer& opt,
                                          const proto::JobSpec& job, const std::string& run_dir,
                                          std::string* from, int64_t steps_per_epoch) {
  const std::vector<Dropout*> drops = dropout_layers(model);
  std::optional<std::pair<std::string, Checkpoint>> found;
  std::string error;
  const bool local = rank_local_buffers(job, comm);
  const int64_t nbuf = local ? buffer_numel(model) : 0;
  // (world, buffer elements): rank 0 fills every rank's row from the checkpoint.
  std::vector<float> buffers(static_cast<size_t>(nbuf) * static_cast<size_t>(comm.size()), 0.f);
  int saved_world = comm.size();  // rank 0: the checkpoint's writer's ranks
  if (comm.rank() == 0) {
    try {
      found = latest_valid_checkpoint(run_dir, [](const std::string& w) {
        std::fprintf(stderr, "lockstep: %s\n", w.c_str());
      });
      if (found) {
        const auto& s = found->second.state;
        const std::vector<std::string> changed =
            s.has_job() ? changed_job_fields(s.job(), job) : std::vector<std::string>{};
        std::string names;
        for (const auto& f : changed) names += (names.empty() ? "" : ", ") + f;
        LOCKSTEP_FAIL_IF(!changed.empty()) << "checkpoint " << found->first
                                           << ": the job changed since this checkpoint was written: " << names
                                           << "; restore the job file or start a new run_dir";
        LOCKSTEP_FAIL_IF(s.job_hash() != job_hash(job))
            << "checkpoint " << found->first << " was written by another job spec (hash " << s.job_hash()
            << ", this job " << job_hash(job) << "); start a new run_dir or restore the job file";
        validate_state(s, {.epochs = job.epochs(),
                           .steps_per_epoch = steps_per_epoch,
                           .accumulate_steps = job.has_accumulate_steps() ? job.accumulate_steps() : 1,
                           .world_size = comm.size(),
                           .batch_size = job.batch_size(),
                           .rng_consumers = static_cast<int64_t>(drops.size())},
                       found->first);  // refuses a world size the global batch does not divide by
        saved_world = s.world_size();
        copy_tensors(found->second.model, model_state(model), "checkpoint " + found->first + " model.pb");
        copy_tensors(found->second.optimizer, opt.state_tensors(), "checkpoint " + found->first + " optimizer.pb");
        if (saved_world != comm.size() && job.distributed().eval_buffers() == proto::DistributedSpec::AVERAGE)
          average_saved_buffers(found->first, found->second, model, saved_world);
        if (nbuf > 0 && saved_world != comm.size()) {
          // Another world size (Note [elastic resume]): every rank starts from model.pb's buffers,
          // which average_saved_buffers made the mean over the writer's ranks under AVERAGE.
          float* row = buffers.data();
          for (int r = 0; r < comm.size(); ++r)
            for (auto& [name, t] : model.named_buffers()) row = std::copy(t->data(), t->data() + t->numel(), row);
        } else if (nbuf > 0) {
          // Every rank's own buffers (Note [rank-local buffers]); a checkpoint without them (written
          // before they were kept) gives every rank rank 0's.
          const auto& saved = found->second.rank_buffers;
          const auto named = model.named_buffers();
          float* row = buffers.data();
          for (int r = 0; r < comm.size(); ++r) {
            size_t k = static_cast<size_t>(r - 1) * named.size();
            for (const auto& [name, t] : named) {
              const Tensor* src = t;
              if (r > 0 && !saved.empty()) {
                LOCKSTEP_FAIL_IF(k >= saved.size() || saved[k].name != rank_buffer_name(r, name) ||
                                 saved[k].tensor.shape() != t->shape())
                    << "checkpoint " << found->first << " rank_buffers.pb: expected " << rank_buffer_name(r, name)
                    << " of " << t->numel() << " values at entry " << k;
                src = &saved[k].tensor;
                ++k;
              }
              row = std::copy(src->data(), src->data() + src->numel(), row);
            }
          }
          LOCKSTEP_FAIL_IF(!saved.empty() && saved.size() != static_cast<size_t>(comm.size() - 1) * named.size())
              << "checkpoint " << found->first << " rank_buffers.pb: " << saved.size() << " tensors, expected "
              << (comm.size() - 1) * named.size();
        }
      }
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  const std::string verdict = broadcast_verdict(comm, error);
  LOCKSTEP_FAIL_IF(!verdict.empty()) << (comm.rank() == 0 ? verdict : "rank 0: " + verdict);

  // header: found, step (2 x 32 bits), epoch, epoch_step, optimizer steps, lr, epoch loss sum, samples.
  std::vector<double> head(9, 0.0);
  if (comm.rank() == 0 && found) {
    const auto& s = found->second.state;
    head = {1.0, static_cast<double>(s.step() & 0xffffffffu), static_cast<double>(s.step() >> 32),
            static_cast<double>(s.epoch()), static_cast<double>(s.epoch_step()),
            static_cast<double>(s.optimizer_steps()), static_cast<double>(s.lr()), s.epoch_loss_sum(),
            s.epoch_samples()};
  }
  comm.all_reduce(std::span<double>(head), ReduceOp::kSum).wait();
  if (head[0] == 0.0) return std::nullopt;

  std::vector<Tensor*> tensors;
  for (auto& [name, t] : model_state(model)) tensors.push_back(t);
  for (auto& [name, t] : opt.state_tensors()) tensors.push_back(t);
  broadcast_tensors(comm, tensors, 0);
  if (nbuf > 0) {
    comm.all_reduce(std::span<float>(buffers), ReduceOp::kSum).wait();
    const float* row = buffers.data() + static_cast<size_t>(comm.rank()) * static_cast<size_t>(nbuf);
    for (auto& [name, t] : model.named_buffers()) {
      std::copy(row, row + t->numel(), t->data());
      row += t->numel();
    }
  }
  opt.set_step_count(static_cast<int64_t>(head[5]));
  opt.set_lr(static_cast<float>(head[6]));

  // rng: (world, consumers), filled by rank 0 from the checkpoint, broadcast.
  const size_t block = drops.size();
  std::vector<RngWire> rng(block * static_cast<size_t>(comm.size()));
  if (comm.rank() == 0) {
    for (const proto::RngRecord& rec : found->second.state.rng()) {  // validated above
      const auto layer = static_cast<size_t>(rng_consumer_index(rec.consumer()));
      if (saved_world == comm.size()) {
        rng[static_cast<size_t>(rec.rank()) * block + layer] =
            RngWire{rec.seed(), rec.step(), rec.key_rank(), rec.stream()};
      } else if (rec.rank() == 0) {
        // Re-keyed (Note [elastic resume]): every new rank r continues rank 0's counter under the
        // key seed_dropout gives rank r.
        for (int r = 0; r < comm.size(); ++r)
          rng[static_cast<size_t>(r) * block + layer] =
              RngWire{rec.seed(), rec.step(), static_cast<uint32_t>(r), rec.stream()};
      }
    }
  }
  if (!rng.empty()) comm.broadcast(std::as_writable_bytes(std::span(rng)), 0).wait();
  for (size_t i = 0; i < drops.size(); ++i)
    drops[i]->set_rng_state(from_wire(rng[static_cast<size_t>(comm.rank()) * block + i]));
  if (from && found) *from = found->first;
  return JobPosition{u64(head[1], head[2]), static_cast<int64_t>(head[3]), static_cast<int64_t>(head[4]), head[7],
                     head[8]};
}

}  // namespace lockstep
