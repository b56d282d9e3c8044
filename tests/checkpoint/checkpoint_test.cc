// Checkpoint round trip, on-disk format (checked with zlib and protobuf directly, not through the
// library), retention, temporary directories, same-step replacement, and copying into live
// tensors.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "runtime/check.h"
#include "tests/checkpoint/checkpoint_test_util.h"

namespace lockstep::testing {
namespace {

uint32_t zlib_crc(const std::string& s) {
  return static_cast<uint32_t>(
      ::crc32(::crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(s.data()), static_cast<uInt>(s.size())));
}

TEST(Checkpoint, RoundTripIsBitIdentical) {
  ScratchDir run;
  const Checkpoint c = random_checkpoint(468, 1);
  const std::string dir = write_checkpoint(run.path(), c, 0);
  EXPECT_EQ(dir, ckpt_dir(run.path(), 468));
  expect_same(read_checkpoint(dir), c);
}

TEST(Checkpoint, FilesFollowTheDocumentedFormat) {
  ScratchDir run;
  const Checkpoint c = random_checkpoint(12, 2);
  const std::string dir = write_checkpoint(run.path(), c, 0);
  const auto files = dir_contents(dir);
  ASSERT_EQ(files.size(), 4u);
  const std::string& manifest = files.at("MANIFEST");
  ASSERT_GE(manifest.size(), 4u);
  const std::string body = manifest.substr(4);
  const auto* p = reinterpret_cast<const unsigned char*>(manifest.data());
  const uint32_t stored = p[0] | p[1] << 8 | p[2] << 16 | static_cast<uint32_t>(p[3]) << 24;
  EXPECT_EQ(stored, zlib_crc(body));
  proto::Manifest m;
  ASSERT_TRUE(m.ParseFromString(body));
  EXPECT_EQ(m.step(), 12u);
  ASSERT_EQ(m.files_size(), 3);
  for (const proto::ManifestEntry& e : m.files()) {
    ASSERT_TRUE(files.count(e.file())) << e.file();
    EXPECT_EQ(e.size(), files.at(e.file()).size()) << e.file();
    EXPECT_EQ(e.crc32(), zlib_crc(files.at(e.file()))) << e.file();
  }
  proto::CheckpointState state;
  ASSERT_TRUE(state.ParseFromString(files.at("state.pb")));
  EXPECT_EQ(state.SerializeAsString(), c.state.SerializeAsString());
  proto::TensorFile model;
  ASSERT_TRUE(model.ParseFromString(files.at("model.pb")));
  ASSERT_EQ(model.tensors_size(), static_cast<int>(c.model.size()));
  for (int i = 0; i < model.tensors_size(); ++i) {
    const Tensor& t = c.model[i].tensor;
    EXPECT_EQ(model.tensors(i).name(), c.model[i].name);
    EXPECT_EQ(Shape(model.tensors(i).shape().begin(), model.tensors(i).shape().end()), t.shape());
    EXPECT_EQ(model.tensors(i).data(),
              std::string(reinterpret_cast<const char*>(t.data()), t.numel() * sizeof(float)));
  }
}

TEST(Checkpoint, KeepsTheNewestTwo) {
  ScratchDir run;
  for (uint64_t step = 1; step <= 5; ++step) write_checkpoint(run.path(), random_checkpoint(step, step), 2);
  EXPECT_EQ(list_checkpoints(run.path()),
            (std::vector<std::string>{ckpt_dir(run.path(), 5), ckpt_dir(run.path(), 4)}));
  EXPECT_EQ(dir_contents(run.path() + "/checkpoints").size(), 2u) << "nothing else left behind";
}

TEST(Checkpoint, KeepZeroKeepsAllNewestFirst) {
  ScratchDir run;
  for (uint64_t step : {3, 1, 20, 2}) write_checkpoint(run.path(), random_checkpoint(step, 7), 0);
  EXPECT_EQ(list_checkpoints(run.path()),
            (std::vector<std::string>{ckpt_dir(run.path(), 20), ckpt_dir(run.path(), 3),
                                      ckpt_dir(run.path(), 2), ckpt_dir(run.path(), 1)}));
}

TEST(Checkpoint, NeverPrunesTheOneJustWritten) {
  ScratchDir run;
  write_checkpoint(run.path(), random_checkpoint(50, 1), 1);
  const std::string dir = write_checkpoint(run.path(), random_checkpoint(40, 2), 1);
  EXPECT_EQ(list_checkpoints(run.path()), std::vector<std::string>{dir});
}

// A crashed writer's directory (complete, never renamed) is not a checkpoint. One under a final
// name without MANIFEST was damaged after it was written (a writer renames only complete ones into
// place): it is listed, reported and skipped, so a resume never mistakes it for "no checkpoint".
TEST(Checkpoint, TemporaryDirectoriesAreNotListedAndOneWithoutManifestIsDamaged) {
  ScratchDir run;
  const std::string good = write_checkpoint(run.path(), random_checkpoint(5, 1), 0);
  const std::string tmp = ckpt_dir(run.path(), 9) + ".tmp-" + std::to_string(::getppid());
  std::filesystem::copy(good, tmp);
  std::filesystem::copy(good, ckpt_dir(run.path(), 8));
  std::filesystem::remove(ckpt_dir(run.path(), 8) + "/MANIFEST");
  EXPECT_EQ(list_checkpoints(run.path()), (std::vector<std::string>{ckpt_dir(run.path(), 8), good}));
  std::vector<std::string> warnings;
  auto latest = latest_valid_checkpoint(run.path(), [&](const std::string& w) { warnings.push_back(w); });
  ASSERT_TRUE(latest.has_value());
  EXPECT_EQ(latest->first, good);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("MANIFEST: missing"), std::string::npos) << warnings[0];
}

TEST(Checkpoint, WriteRemovesTemporaryDirectoriesOfDeadWritersOnly) {
  ScratchDir run;
  write_checkpoint(run.path(), random_checkpoint(1, 1), 0);
  const pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ASSERT_EQ(::waitpid(dead, nullptr, 0), dead);
  const std::string dead_tmp = ckpt_dir(run.path(), 2) + ".tmp-" + std::to_string(dead);
  const std::string live_tmp = ckpt_dir(run.path(), 3) + ".tmp-" + std::to_string(::getppid());
  std::filesystem::create_directories(dead_tmp);
  std::filesystem::create_directories(live_tmp);
  write_checkpoint(run.path(), random_checkpoint(4, 4), 0);
  EXPECT_FALSE(std::filesystem::exists(dead_tmp));
  EXPECT_TRUE(std::filesystem::exists(live_tmp)) << "another live writer's directory";
}

TEST(Checkpoint, SameStepIsReplacedWhole) {
  ScratchDir run;
  write_checkpoint(run.path(), random_checkpoint(7, 1), 0);
  const Checkpoint second = random_checkpoint(7, 2, 50);
  const std::string dir = write_checkpoint(run.path(), second, 0);
  expect_same(read_checkpoint(dir), second);
  EXPECT_EQ(dir_contents(run.path() + "/checkpoints").size(), 1u) << "the replaced one is removed";
}

TEST(Checkpoint, NothingToResumeFrom) {
  ScratchDir run;
  EXPECT_TRUE(list_checkpoints(run.path()).empty());
  EXPECT_FALSE(latest_valid_checkpoint(run.path(), nullptr).has_value());
  EXPECT_THROW(read_checkpoint(ckpt_dir(run.path(), 1)), Error);
}

TEST(CopyTensors, SnapshotThenRestoreInPlace) {
  std::mt19937 rng(3);
  Tensor w = random_tensor({4, 3}, rng), b = random_tensor({4}, rng);
  const Tensor w0 = w.clone(), b0 = b.clone();
  const std::vector<std::pair<std::string, Tensor*>> live = {{"w", &w}, {"b", &b}};
  const std::vector<NamedTensor> snap = snapshot_tensors(live);
  const float* storage = w.data();
  w.fill(1.f);
  b.fill(2.f);
  expect_same_tensors(snap, {{"w", w0}, {"b", b0}});  // detached from the live tensors
  copy_tensors(snap, live, "model");
  EXPECT_EQ(w.data(), storage) << "restored in place";
  expect_same_tensors({{"w", w}, {"b", b}}, {{"w", w0}, {"b", b0}});
}

TEST(CopyTensors, MismatchesNameTheTensor) {
  std::mt19937 rng(4);
  Tensor w = random_tensor({4, 3}, rng), b = random_tensor({4}, rng);
  const Tensor w0 = w.clone();
  const std::vector<NamedTensor> saved = {{"w", random_tensor({4, 3}, rng)}, {"b", random_tensor({5}, rng)}};
  auto message = [&](const std::vector<std::pair<std::string, Tensor*>>& to) {
    try {
      copy_tensors(saved, to, "model");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message({{"w", &w}, {"b", &b}}), "model 'b': shape (5) in the checkpoint, (4) in this run");
  EXPECT_EQ(message({{"w", &w}, {"bias", &b}}), "model: tensor 1 is 'b' in the checkpoint, 'bias' in this run");
  EXPECT_EQ(message({{"w", &w}}), "model: the checkpoint has 2 tensors, this run has 1");
  expect_same_tensors({{"w", w}}, {{"w", w0}});  // nothing copied when a later tensor mismatches
}

}  // namespace
}  // namespace lockstep::testing
