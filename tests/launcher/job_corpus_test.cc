// The bad-job corpus (tests/launcher/bad_jobs/*.textproto): every file must be refused by the
// checks a launch makes on 2 ranks (load_job, then check_job_for_launch) with a one-line error that
// names the file and contains the text of its first line, "# expect: <substring>". The shipped
// jobs (launcher/jobs/) must pass the same checks, so a checker that refuses everything fails here.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "launcher/job_file.h"
#include "runtime/check.h"

namespace fs = std::filesystem;

namespace {

constexpr int kWorldSize = 2;
const std::string kCorpusDir = std::string(LOCKSTEP_SOURCE_DIR) + "/tests/launcher/bad_jobs";
const std::string kJobsDir = std::string(LOCKSTEP_SOURCE_DIR) + "/launcher/jobs";

std::vector<std::string> textprotos(const std::string& dir) {
  std::vector<std::string> out;
  if (!fs::is_directory(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ".textproto") out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

// The substring after "# expect: " on the first line; empty when the line is missing.
std::string expectation(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  const std::string tag = "# expect: ";
  return line.rfind(tag, 0) == 0 ? line.substr(tag.size()) : "";
}

// Every check a launch makes; the error message, or "" when the job is accepted.
std::string launch_error(const std::string& path, int world_size = kWorldSize) {
  try {
    const lockstep::proto::JobSpec job = lockstep::load_job(path);
    lockstep::check_job_for_launch(job, path, world_size);
  } catch (const lockstep::Error& e) {
    return e.what();
  }
  return "";
}

std::string validate_error(const lockstep::proto::JobSpec& job) {
  try {
    lockstep::validate_job(job, "j");
  } catch (const lockstep::Error& e) {
    return e.what();
  }
  return "";
}

class BadJob : public ::testing::TestWithParam<std::string> {};

TEST_P(BadJob, RefusedWithOneLineNamingFileAndExpectation) {
  const std::string path = GetParam();
  const std::string expect = expectation(path);
  ASSERT_FALSE(expect.empty()) << path << ": the first line must be \"# expect: <substring>\"";
  const std::string err = launch_error(path);
  ASSERT_FALSE(err.empty()) << path << ": accepted, expected an error containing \"" << expect << "\"";
  EXPECT_EQ(err.rfind(path + ":", 0), 0u) << "does not start with the file path: " << err;
  EXPECT_NE(err.find(expect), std::string::npos) << "expected \"" << expect << "\" in: " << err;
  EXPECT_EQ(err.find('\n'), std::string::npos) << "not one line: " << err;
}

INSTANTIATE_TEST_SUITE_P(Corpus, BadJob, ::testing::ValuesIn(textprotos(kCorpusDir)),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name = fs::path(info.param).stem().string();
                           for (char& ch : name)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return name;
                         });

TEST(JobCorpus, HasAtLeastTwentyFiles) { EXPECT_GE(textprotos(kCorpusDir).size(), 20u) << kCorpusDir; }

TEST(JobCorpus, ExpectationsAreDistinct) {
  // Two files expecting the same text would test one check twice and another not at all.
  std::vector<std::string> seen;
  for (const auto& path : textprotos(kCorpusDir)) {
    const std::string e = expectation(path);
    EXPECT_EQ(std::count(seen.begin(), seen.end(), e), 0) << path << " repeats \"" << e << "\"";
    seen.push_back(e);
  }
}

TEST(ShippedJobs, PassEveryLaunchCheckOnTwoRanks) {
  const auto jobs = textprotos(kJobsDir);
  ASSERT_GE(jobs.size(), 1u) << kJobsDir;
  for (const auto& path : jobs) EXPECT_EQ(launch_error(path), "") << path;
}

TEST(LaunchChecks, BatchSizeAgainstWorldSize) {
  const std::string path = kJobsDir + "/fmnist-mlp.textproto";
  const lockstep::proto::JobSpec job = lockstep::load_job(path);
  ASSERT_EQ(job.batch_size(), 128);
  for (int world : {1, 2, 4, 64, 128}) EXPECT_EQ(launch_error(path, world), "") << "world size " << world;
  for (int world : {3, 5, 127}) {
    const std::string err = launch_error(path, world);
    EXPECT_NE(err.find(path + ": batch_size: global batch 128 is not a multiple of the world size " +
                       std::to_string(world)),
              std::string::npos)
        << err;
  }
  EXPECT_NE(launch_error(path, 129).find(path + ": batch_size: global batch 128 is smaller than the world size 129"),
            std::string::npos);
}

TEST(LaunchChecks, ShapeMismatchCarriesThePathAndNamesTheLayer) {
  lockstep::proto::JobSpec job = lockstep::load_job(kJobsDir + "/fmnist-mlp.textproto");
  auto* m = job.mutable_model();
  m->clear_reference();
  m->add_input_shape(784);
  auto* l0 = m->add_layers()->mutable_linear();
  l0->set_in_features(784);
  l0->set_out_features(64);
  m->add_layers()->mutable_relu();
  auto* l2 = m->add_layers()->mutable_linear();
  l2->set_in_features(63);
  l2->set_out_features(10);
  try {
    lockstep::check_job_for_launch(job, "in-code.textproto", kWorldSize);
    FAIL() << "accepted Linear(63->10) after 64 features";
  } catch (const lockstep::Error& e) {
    const std::string err = e.what();
    EXPECT_EQ(err.rfind("in-code.textproto: ", 0), 0u) << err;
    EXPECT_NE(err.find("model.layers[2]"), std::string::npos) << err;
    EXPECT_NE(err.find("Linear(63->10)"), std::string::npos) << err;
  }
  l2->set_in_features(64);
  EXPECT_NO_THROW(lockstep::check_job_for_launch(job, "in-code.textproto", kWorldSize));
}

TEST(ValidateJob, NamesTheFullFieldPathAndTheValue) {
  lockstep::proto::JobSpec job = lockstep::load_job(kJobsDir + "/fmnist-cnn.textproto");
  auto* m = job.mutable_model();
  m->clear_reference();
  for (int c : {1, 28, 28}) m->add_input_shape(c);
  for (int i = 0; i < 3; ++i) m->add_layers()->mutable_relu();
  auto* conv = m->add_layers()->mutable_conv2d();
  conv->set_in_channels(1);
  conv->set_out_channels(-4);
  conv->set_kernel_size(3);
  EXPECT_EQ(validate_error(job), "j: model.layers[3].conv2d.out_channels: must be positive, got -4 (allowed: (0, 16777216])");
  conv->set_out_channels(4);
  EXPECT_EQ(validate_error(job), "");
  m->mutable_layers(1)->mutable_dropout()->set_p(1.f);  // p = 1 drops everything
  EXPECT_EQ(validate_error(job), "j: model.layers[1].dropout.p: must be in [0, 1), got 1");
  m->mutable_layers(1)->mutable_dropout()->set_p(0.f);
  job.mutable_phases()->set_checkpoint_every(0);  // 0 is allowed: only the final checkpoint
  EXPECT_EQ(validate_error(job), "");
  job.mutable_phases()->set_eval_every(-1);
  EXPECT_EQ(validate_error(job), "j: phases.eval_every: must be at least 1, got -1 (allowed: [1, 1000000])");
}

TEST(ValidateJob, ErrorIsOneLineEvenWhenTheFileQuotesControlCharacters) {
  lockstep::proto::JobSpec job = lockstep::load_job(kJobsDir + "/fmnist-mlp.textproto");
  job.mutable_model()->set_reference("fmnist\nmlp");
  std::string err = validate_error(job);
  EXPECT_NE(err.find("j: model.reference: unknown model \"fmnist\\x0amlp\""), std::string::npos) << err;
  EXPECT_EQ(err.find('\n'), std::string::npos) << err;

  job.mutable_model()->set_reference("fmnist-mlp");
  job.mutable_distributed()->set_backend("mpi\r\nself");
  err = validate_error(job);
  EXPECT_NE(err.find("j: distributed.backend: unknown backend"), std::string::npos) << err;
  EXPECT_EQ(err.find_first_of("\r\n"), std::string::npos) << err;

  job.mutable_distributed()->clear_backend();
  job.set_run_dir(std::string("runs/a\0\nb", 9));
  err = validate_error(job);
  EXPECT_NE(err.find("j: run_dir: contains a NUL byte: \"runs/a\\x00\\x0ab\""), std::string::npos) << err;
  EXPECT_EQ(err.find('\n'), std::string::npos) << err;

  job.set_run_dir("\t \n");
  err = validate_error(job);
  EXPECT_NE(err.find("j: run_dir: is blank"), std::string::npos) << err;
  EXPECT_EQ(err.find('\n'), std::string::npos) << err;

  job.set_run_dir("runs/ok");
  EXPECT_EQ(validate_error(job), "");
}

}  // namespace
