// check_resume: a checkpoint is data from outside. Each field of a self-consistent checkpoint (its
// MANIFEST and CRCs all valid) set to a value that does not fit the job is refused with one line
// naming the checkpoint and the field; an edited job is refused naming each changed field (compared
// with protobuf's MessageDifferencer), and a symlink to the same data is the same data.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <string>

#include "launcher/job_builder.h"
#include "launcher/job_file.h"
#include "launcher/job_override.h"
#include "launcher/resume_check.h"
#include "runtime/check.h"
#include "runtime/checkpoint/checkpoint.h"
#include "tests/launcher/data_faults.h"

namespace fs = std::filesystem;

namespace {

class ResumeCheck : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("lockstep_resume_check_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    lockstep::testing::write_good_data(dir_ / "data");  // 20 samples: batch 4 -> 5 steps per epoch
    job_ = lockstep::load_job(lockstep::testing::write_fault_job(dir_, "reference: \"fmnist-mlp\"",
                                                                 (dir_ / "data").string()));
    job_.set_epochs(3);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A checkpoint of job_ on 2 ranks at epoch 1, step 2 of 5 (global step 7), as save_checkpoint
  // writes it, after `edit`.
  void write(const std::function<void(lockstep::Checkpoint&)>& edit = {}) {
    lockstep::BuiltModel b = lockstep::build_model(job_);
    auto opt = lockstep::build_optimizer(job_, *b.model);
    lockstep::Checkpoint c;
    auto& s = c.state;
    s.set_step(7);
    s.set_epoch(1);
    s.set_epoch_step(2);
    s.set_job_hash(lockstep::job_hash(job_));
    s.set_world_size(2);
    s.set_optimizer_steps(7);
    s.set_lr(0.05f);
    *s.mutable_job() = job_;
    for (int r = 0; r < 2; ++r)
      for (int i : {3, 7}) {  // fmnist-mlp's dropout layers
        auto* rec = s.add_rng();
        rec->set_rank(r);
        rec->set_consumer("dropout." + std::to_string(i == 3 ? 0 : 1));
        rec->set_seed(1);
        rec->set_key_rank(static_cast<uint32_t>(r));
        rec->set_stream(2);
        rec->set_step(7);
      }
    c.model = lockstep::snapshot_tensors(b.model->state_dict());
    c.optimizer = lockstep::snapshot_tensors(opt->state_tensors());
    if (edit) edit(c);
    lockstep::write_checkpoint((dir_ / "run").string(), c, 0);
  }
  std::string error(const lockstep::proto::JobSpec& job, int world_size = 2) {
    try {
      lockstep::check_resume(job, (dir_ / "run").string(), world_size);
    } catch (const lockstep::Error& e) {
      const std::string err = e.what();
      EXPECT_EQ(err.find('\n'), std::string::npos) << err;
      for (const char* raw : {"stoul", "failed at", ".cc:"}) EXPECT_EQ(err.find(raw), std::string::npos) << err;
      return err;
    }
    return "";
  }
  void expect_refused(const std::function<void(lockstep::Checkpoint&)>& edit, const std::string& needle) {
    fs::remove_all(dir_ / "run");
    write(edit);
    const std::string err = error(job_);
    EXPECT_NE(err.find("checkpoint " + (dir_ / "run/checkpoints/ckpt-000000007").string() + ": "),
              std::string::npos)
        << err;
    EXPECT_NE(err.find(needle), std::string::npos) << "expected \"" << needle << "\" in: " << err;
  }

  fs::path dir_;
  lockstep::proto::JobSpec job_;
};

TEST_F(ResumeCheck, AConsistentCheckpointAndNoCheckpointPass) {
  EXPECT_EQ(error(job_), "");  // no checkpoint yet
  write();
  EXPECT_EQ(error(job_), "");
  lockstep::proto::JobSpec longer = job_;  // epochs, phases, run_dir, metrics_file may change
  longer.set_epochs(10);
  longer.set_metrics_file("other.jsonl");
  longer.mutable_phases()->set_eval_every(2);
  EXPECT_EQ(error(longer), "");
}

// Written by 2 ranks (batch 4): resumable on 1 and 4 ranks, which divide the global batch; 3 is
// refused naming batch_size and both world sizes (Note [elastic resume]).
TEST_F(ResumeCheck, AnotherWorldSizeIsAllowedWhenTheBatchDividesByIt) {
  ASSERT_EQ(job_.batch_size(), 4);
  write();
  EXPECT_EQ(error(job_, 1), "");
  EXPECT_EQ(error(job_, 4), "");
  const std::string dir = (dir_ / "run/checkpoints/ckpt-000000007").string();
  const std::string refused = "checkpoint " + dir +
                              " was written by 2 ranks; resuming on 3 ranks needs batch_size (the global batch, 4)"
                              " to be a multiple of 3; choose a number of ranks that divides it";
  EXPECT_EQ(error(job_, 3), refused);
  try {
    lockstep::check_resume_world_size(job_, (dir_ / "run").string(), 3);
    ADD_FAILURE() << "check_resume_world_size accepted 3 ranks";
  } catch (const lockstep::Error& e) {
    EXPECT_EQ(std::string(e.what()), refused);
  }
  EXPECT_NO_THROW(lockstep::check_resume_world_size(job_, (dir_ / "run").string(), 4));
}

// A job cut to fewer epochs than its checkpoint has trained is named as the job's field (the user's
// edit or --set epochs), not as the checkpoint's state.
TEST_F(ResumeCheck, FewerEpochsThanTheCheckpointTrainedNamesEpochs) {
  write([](lockstep::Checkpoint& c) { c.state.set_epoch(4); });
  const std::string dir = (dir_ / "run/checkpoints/ckpt-000000007").string();
  EXPECT_EQ(error(job_), "resume: epochs: 3 is fewer than the 4 epochs checkpoint " + dir +
                            " has already trained; give epochs >= 4 to resume it");
  lockstep::proto::JobSpec longer = job_;
  longer.set_epochs(4);
  EXPECT_EQ(error(longer).find("fewer than"), std::string::npos) << error(longer);
}

TEST_F(ResumeCheck, AnEditedJobNamesEveryChangedField) {
  write();
  lockstep::proto::JobSpec edited = job_;
  edited.mutable_optimizer()->set_lr(0.1f);
  edited.set_batch_size(2);
  edited.mutable_distributed()->set_sync_batchnorm(true);
  const std::string err = error(edited);
  EXPECT_NE(err.find("the job changed since this checkpoint was written: "), std::string::npos) << err;
  for (const char* f : {"optimizer.lr", "batch_size", "distributed.sync_batchnorm"})
    EXPECT_NE(err.find(f), std::string::npos) << f << " not named in: " << err;
  EXPECT_EQ(err.find("epochs"), std::string::npos) << err;
}

// `--resume --set ...` (launch, coordinator): the overridden job is what the checkpoint is checked
// against, so a --set of a field that shapes training is refused like an edited file, naming the
// --set, and one the resume check allows is taken.
TEST_F(ResumeCheck, ASetOverrideIsCheckedLikeAnEditedJob) {
  write();
  auto check = [&](const std::vector<std::string>& sets) -> std::string {
    lockstep::proto::JobSpec job = job_;
    lockstep::apply_overrides(job, sets);
    try {
      lockstep::check_with_overrides(sets, [&] { lockstep::check_resume(job, (dir_ / "run").string(), 2); });
    } catch (const lockstep::Error& e) {
      return e.what();
    }
    return "";
  };
  const std::string err = check({"epochs=10", "optimizer.lr=0.1"});
  EXPECT_NE(err.find("the job changed since this checkpoint was written: optimizer.lr"), std::string::npos) << err;
  EXPECT_NE(err.find("(set by --set optimizer.lr=0.1)"), std::string::npos) << err;
  EXPECT_EQ(check({"epochs=10", "phases.eval_every=2", "eval.top_k=1,3"}), "");
  EXPECT_EQ(check({"optimizer.lr=0.05"}), "") << "the checkpoint's own value";
  EXPECT_EQ(check({"trace.first_step=3", "trace.last_step=9"}), "") << "a timeline changes no step of training";
}

// A field added or removed inside a block that both jobs have is named too (the differencer reports
// it with the block as its message, not the job: this once crashed in protobuf's reflection).
TEST_F(ResumeCheck, AFieldAddedOrRemovedInsideABlockIsNamed) {
  job_.mutable_distributed()->set_bucket_mb(25.f);
  write();
  lockstep::proto::JobSpec edited = job_;
  edited.mutable_model()->set_memory_format(lockstep::proto::ModelSpec::CONTIGUOUS);
  edited.mutable_distributed()->clear_bucket_mb();
  edited.mutable_distributed()->set_comm_hook(lockstep::proto::DistributedSpec::BF16_COMPRESS_HOOK);
  edited.mutable_optimizer()->mutable_sgd()->set_nesterov(true);
  const std::string err = error(edited);
  for (const char* f : {"model.memory_format", "distributed.bucket_mb", "distributed.comm_hook",
                        "optimizer.sgd.nesterov"})
    EXPECT_NE(err.find(f), std::string::npos) << f << " not named in: " << err;
  EXPECT_EQ(err.find("reflection"), std::string::npos) << err;
}

// Augmentation changes the batches, so it is named; the prefetch depth changes none of them (the
// training is bit-identical for every depth), so a resume may change it.
TEST_F(ResumeCheck, AugmentationIsPartOfTheJobButThePrefetchDepthIsNot) {
  write();
  lockstep::proto::JobSpec deeper = job_;
  deeper.mutable_data()->set_prefetch_batches(8);
  EXPECT_EQ(error(deeper), "");
  lockstep::proto::JobSpec augmented = job_;
  augmented.mutable_data()->mutable_augment()->set_random_crop_padding(2);
  const std::string err = error(augmented);
  EXPECT_NE(err.find("data.augment.random_crop_padding"), std::string::npos) << err;
}

TEST_F(ResumeCheck, TheSameDataThroughASymlinkIsTheSameData) {
  write();
  fs::create_directory_symlink(dir_ / "data", dir_ / "link");
  lockstep::proto::JobSpec linked = job_;
  linked.mutable_data()->set_dir((dir_ / "link").string());
  EXPECT_EQ(error(linked), "");
  EXPECT_EQ(lockstep::job_hash(linked), lockstep::job_hash(job_));
  linked.mutable_data()->set_dir((dir_ / "link/../data/.").string());
  EXPECT_EQ(lockstep::job_hash(linked), lockstep::job_hash(job_));
}

TEST_F(ResumeCheck, EveryStateFieldIsCheckedAgainstTheJob) {
  using C = lockstep::Checkpoint;
  expect_refused([](C& c) { c.state.mutable_rng(1)->set_consumer("dropout1"); },
                 "state.pb: rng[1].consumer: expected \"dropout.<layer>\", got \"dropout1\"");
  expect_refused([](C& c) { c.state.mutable_rng(1)->set_consumer("dropout.9"); },
                 "rng[1].consumer: \"dropout.9\", but the model has 2 dropout layers");
  expect_refused([](C& c) { c.state.mutable_rng(2)->set_rank(5); }, "rng[2].rank: must be in [0, 2), got 5");
  expect_refused([](C& c) { c.state.mutable_rng(3)->set_rank(0); }, "rng[3].consumer: \"dropout.1\" of rank 0 appears twice");
  expect_refused([](C& c) { c.state.set_epoch_step(1000000000000); }, "epoch_step: must be in [0, 5), got 1000000000000");
  expect_refused([](C& c) { c.state.set_epoch(-3); }, "epoch: must be in [0, 3], got -3");
  expect_refused([](C& c) { c.state.set_optimizer_steps(8); }, "optimizer_steps: must be in [0, step 7], got 8");
  expect_refused([](C& c) { c.state.set_lr(-1.f); }, "lr: must be finite and >= 0, got -1");
  expect_refused([](C& c) { c.state.mutable_rng(0)->set_stream(77); }, "rng[0].stream: unknown stream 77");
  expect_refused([](C& c) { c.state.set_world_size(4); }, "rng: 4 records, expected 8 (4 ranks x 2 dropout layers)");
  expect_refused([](C& c) { c.state.set_world_size(0); }, "world_size: must be at least 1, got 0");
  expect_refused([](C& c) { c.model[0].tensor = lockstep::Tensor::empty({3, 3}); },
                 "model.pb '0.weight': shape (3, 3) in the checkpoint");
  expect_refused([](C& c) { c.model[1].name = "1.weight"; }, "model.pb: tensor 1 is '1.weight' in the checkpoint");
}

}  // namespace
