// restore_latest on M ranks of a checkpoint written by N = 2 ranks (Note [elastic resume] in
// launcher/worker/worker_state.cc), run under mpirun on 1, 2 and 3 ranks. Rank-local BatchNorm
// buffers follow the eval-buffer policy: AVERAGE gives every rank the mean over the 2 saved ranks
// (each rank its own when M == N), BROADCAST gives every rank rank 0's; every rank's dropout
// counter is the saved one, keyed with its new rank; a batch that does not divide by M is refused
// on every rank in one line naming batch_size, N and M.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "launcher/job_builder.h"
#include "launcher/resume_check.h"
#include "launcher/worker/worker_state.h"
#include "layers/dropout.h"
#include "runtime/check.h"
#include "runtime/checkpoint/checkpoint.h"
#include "tests/distributed/test_comm.h"

namespace fs = std::filesystem;

namespace lockstep {
namespace {

constexpr int kSaved = 2;       // ranks that wrote the checkpoint
constexpr uint64_t kStep = 7;   // its step, and its dropout counters'
constexpr uint64_t kSeed = 5;

proto::JobSpec small_job(proto::DistributedSpec::EvalBuffers policy, int64_t batch) {
  proto::JobSpec job;
  job.set_name("elastic");
  job.mutable_model()->add_input_shape(8);
  job.mutable_model()->add_layers()->mutable_linear()->set_in_features(8);
  job.mutable_model()->mutable_layers(0)->mutable_linear()->set_out_features(4);
  job.mutable_model()->add_layers()->mutable_batch_norm1d()->set_num_features(4);
  job.mutable_model()->add_layers()->mutable_dropout()->set_p(0.5f);
  job.mutable_optimizer()->set_lr(0.05f);
  job.mutable_optimizer()->mutable_sgd()->set_momentum(0.9f);
  job.set_seed(kSeed);
  job.set_epochs(3);
  job.set_batch_size(batch);
  job.mutable_distributed()->set_eval_buffers(policy);
  return job;
}

// Saved rank r's value of element i of buffer b: distinct for every rank, buffer and element.
float saved_value(int r, size_t b, int64_t i) { return 1.0f + 10.0f * r + 3.0f * static_cast<float>(b) + 0.25f * i; }

class ElasticRestore : public ::testing::Test {
 protected:
  void SetUp() override {
    // Only rank 0 reads the run directory.
    run_dir_ = (fs::temp_directory_path() / ("lockstep_elastic_restore_" + std::to_string(::getpid()))).string();
  }
  void TearDown() override {
    if (test_comm().rank() == 0) fs::remove_all(run_dir_);
  }

  // Rank 0 writes a checkpoint of `job` by kSaved ranks at step kStep, as save_checkpoint would,
  // with rank r's buffers saved_value(r, ...) (rank_buffers.pb under AVERAGE only).
  void write(const proto::JobSpec& job) {
    Communicator& comm = test_comm();
    if (comm.rank() == 0) {
      fs::remove_all(run_dir_);
      BuiltModel b = build_model(job);
      auto opt = build_optimizer(job, *b.model);
      Checkpoint c;
      proto::CheckpointState& s = c.state;
      s.set_step(kStep);
      s.set_epoch(0);
      s.set_epoch_step(static_cast<int64_t>(kStep));
      s.set_job_hash(job_hash(job));
      s.set_world_size(kSaved);
      s.set_optimizer_steps(static_cast<int64_t>(kStep));
      s.set_lr(0.05f);
      *s.mutable_job() = job;
      for (int r = 0; r < kSaved; ++r) {
        proto::RngRecord* rec = s.add_rng();
        rec->set_rank(r);
        rec->set_consumer("dropout.0");
        rec->set_seed(kSeed);
        rec->set_key_rank(static_cast<uint32_t>(r));
        rec->set_stream(static_cast<uint32_t>(RngStream::kDropout));
        rec->set_step(kStep);
      }
      const auto named = b.model->named_buffers();
      for (size_t k = 0; k < named.size(); ++k)
        for (int64_t i = 0; i < named[k].second->numel(); ++i) named[k].second->data()[i] = saved_value(0, k, i);
      c.model = snapshot_tensors(b.model->state_dict());
      c.optimizer = snapshot_tensors(opt->state_tensors());
      if (job.distributed().eval_buffers() == proto::DistributedSpec::AVERAGE)
        for (int r = 1; r < kSaved; ++r)
          for (size_t k = 0; k < named.size(); ++k) {
            Tensor t = Tensor::empty(named[k].second->shape());
            for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] = saved_value(r, k, i);
            c.rank_buffers.push_back({"rank" + std::to_string(r) + "/" + named[k].first, t});
          }
      write_checkpoint(run_dir_, c, 0);
    }
    comm.barrier().wait();
  }

  // Restores `job` on this rank; returns the live model.
  std::unique_ptr<Module> restore(const proto::JobSpec& job) {
    Communicator& comm = test_comm();
    BuiltModel b = build_model(job);
    seed_dropout(*b.model, kSeed, static_cast<uint32_t>(comm.rank()));
    auto opt = build_optimizer(job, *b.model);
    const auto pos = restore_latest(comm, *b.model, *opt, job, run_dir_);
    EXPECT_TRUE(pos.has_value());
    if (pos) {
      EXPECT_EQ(pos->step, kStep);
      EXPECT_EQ(pos->epoch_step, static_cast<int64_t>(kStep));
    }
    EXPECT_EQ(opt->step_count(), static_cast<int64_t>(kStep));
    return std::move(b.model);
  }

  std::string run_dir_;
};

TEST_F(ElasticRestore, AverageGivesEveryRankTheMeanOverTheSavedRanks) {
  const proto::JobSpec job = small_job(proto::DistributedSpec::AVERAGE, 12);
  write(job);
  const auto model = restore(job);
  const int rank = test_comm().rank(), world = test_comm().size();
  const auto named = model->named_buffers();
  ASSERT_FALSE(named.empty());
  for (size_t k = 0; k < named.size(); ++k)
    for (int64_t i = 0; i < named[k].second->numel(); ++i) {
      // The same world size: each rank its own (a plain resume); another: the mean over the 2.
      const float expect = world == kSaved ? saved_value(rank, k, i) : (saved_value(0, k, i) + saved_value(1, k, i)) / 2;
      EXPECT_EQ(named[k].second->data()[i], expect) << named[k].first << "[" << i << "] on rank " << rank << " of " << world;
    }
}

TEST_F(ElasticRestore, BroadcastGivesEveryRankRankZeros) {
  const proto::JobSpec job = small_job(proto::DistributedSpec::BROADCAST, 12);
  write(job);
  const auto model = restore(job);
  const auto named = model->named_buffers();
  for (size_t k = 0; k < named.size(); ++k)
    for (int64_t i = 0; i < named[k].second->numel(); ++i)
      EXPECT_EQ(named[k].second->data()[i], saved_value(0, k, i)) << named[k].first << "[" << i << "]";
}

TEST_F(ElasticRestore, EveryRankContinuesTheDropoutCounterUnderItsOwnKey) {
  const proto::JobSpec job = small_job(proto::DistributedSpec::BROADCAST, 12);
  write(job);
  const auto model = restore(job);
  const std::vector<Dropout*> drops = dropout_layers(*model);
  ASSERT_EQ(drops.size(), 1u);
  const RngState s = drops[0]->rng_state();
  EXPECT_EQ(s.step, kStep);
  EXPECT_EQ(s.seed, kSeed);
  EXPECT_EQ(s.rank, static_cast<uint32_t>(test_comm().rank()));
  EXPECT_EQ(s.stream, RngStream::kDropout);
}

TEST_F(ElasticRestore, ABatchThatDoesNotDivideByTheWorldSizeIsRefusedOnEveryRank) {
  const proto::JobSpec job = small_job(proto::DistributedSpec::BROADCAST, 2);  // divides by 1 and 2
  write(job);
  const int world = test_comm().size();
  BuiltModel b = build_model(job);
  auto opt = build_optimizer(job, *b.model);
  std::string error;
  try {
    restore_latest(test_comm(), *b.model, *opt, job, run_dir_);
  } catch (const Error& e) {
    error = e.what();
  }
  if (world <= 2) {
    EXPECT_EQ(error, "");
    return;
  }
  const std::string line = "was written by 2 ranks; resuming on " + std::to_string(world) +
                           " ranks needs batch_size (the global batch, 2) to be a multiple of " + std::to_string(world);
  EXPECT_NE(error.find(line), std::string::npos) << error;
  EXPECT_EQ(error.find('\n'), std::string::npos) << error;
}

}  // namespace
}  // namespace lockstep
