// The model build's shape check infers shapes by formula and never runs a layer: a model PyTorch
// trains is accepted (BatchNorm1d without running statistics), a model whose input does not hold a
// data sample is refused naming model.input_shape, and `lockstep train` gives the same one-line
// errors and runs the accepted model on a tiny data set.
#include "launcher/job_builder.h"

#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>

#include "launcher/job_file.h"
#include "runtime/autograd.h"
#include "runtime/check.h"
#include "runtime/grad_mode.h"
#include "tests/launcher/run_command.h"

namespace fs = std::filesystem;

namespace lockstep {
namespace {

// An MLP with a BatchNorm1d that keeps no running statistics: it normalises with batch statistics
// in eval too, so a 1-row eval probe of its shapes used to fail although PyTorch trains it.
constexpr const char* kNoTrackModel =
    "input_shape: [784] "
    "layers { linear { in_features: 784 out_features: 16 } } "
    "layers { batch_norm1d { num_features: 16 track_running_stats: false } } "
    "layers { relu {} } layers { linear { in_features: 16 out_features: 10 } }";

proto::JobSpec job_of(const std::string& model_block, const std::string& data_dir = "/data") {
  proto::JobSpec job;
  const std::string text = "name: \"j\" model { " + model_block + " } data { dir: \"" + data_dir +
                           "\" } optimizer { lr: 0.05 sgd {} } epochs: 1 batch_size: 4";
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &job)) << text;
  return job;
}

TEST(BuildModel, BatchNormWithoutRunningStatsIsAcceptedAndRunsInBothModes) {
  const proto::JobSpec job = job_of(kNoTrackModel, LOCKSTEP_DATA_DIR);
  EXPECT_NO_THROW(check_job_for_launch(job, "j.textproto", 2));
  BuiltModel b = build_model(job);
  EXPECT_EQ(b.model->output_shape({4, 784}), (Shape{4, 10}));
  Tensor x = Tensor::full({4, 784}, 0.5f);
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = static_cast<float>(i % 17) / 17.f;
  b.model->train();
  Tensor y = b.model->forward(x);
  EXPECT_EQ(y.shape(), (Shape{4, 10}));
  backward(y, Tensor::full({4, 10}, 0.1f));
  b.model->eval();
  NoGradGuard no_grad;
  EXPECT_EQ(b.model->forward(x).shape(), (Shape{4, 10}));
}

TEST(BuildModel, ShapeErrorNamesTheLayerItsKindAndBothShapes) {
  try {
    build_model(job_of("input_shape: [1, 28, 28] layers { flatten {} } "
                       "layers { batch_norm1d { num_features: 16 track_running_stats: false } }"));
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "model.layers[1]: BatchNorm1d(16): expected input (N, 16) or (N, 16, L), got (1, 784)");
  }
}

TEST(CheckModelInput, RefusesAnInputThatDoesNotHoldOneDataSample) {
  Dataset data;
  data.height = data.width = 28;
  BuiltModel b = build_model(job_of("input_shape: [1, 28, 29] layers { flatten {} } "
                                    "layers { linear { in_features: 812 out_features: 10 } }"));
  try {
    check_model_input(b, data);
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "model.input_shape: (1, 28, 29) does not hold one data sample (1, 28, 28) (784 values)");
  }
  EXPECT_NO_THROW(check_model_input(build_model(job_of("reference: \"fmnist-cnn\"")), data));
  EXPECT_NO_THROW(check_model_input(build_model(job_of(kNoTrackModel)), data));
}

// `lockstep train` on a data set of 20 images.
class TrainCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("lockstep_job_builder_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "data");
    for (const char* split : {"train", "t10k"}) {
      std::ofstream(dir_ / "data" / (std::string(split) + "-images-idx3-ubyte"), std::ios::binary)
          << testing::idx_bytes({20, 28, 28}, 20 * 784);
      std::ofstream(dir_ / "data" / (std::string(split) + "-labels-idx1-ubyte"), std::ios::binary)
          << testing::idx_bytes({20}, 20);
    }
  }
  void TearDown() override { fs::remove_all(dir_); }

  testing::CommandResult train(const std::string& model_block) {
    const fs::path job = dir_ / "job.textproto";
    std::ofstream(job) << "model { " << model_block << " }\ndata { dir: \"" << (dir_ / "data").string()
                       << "\" }\noptimizer { lr: 0.05 sgd { momentum: 0.9 } }\nepochs: 1\nbatch_size: 4\n"
                       << "metrics_file: \"" << (dir_ / "m.jsonl").string() << "\"\n";
    return testing::run_command("train " + job.string(), 120);
  }

  fs::path dir_;
};

TEST_F(TrainCommand, TrainsABatchNormWithoutRunningStats) {
  const auto r = train(kNoTrackModel);
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(r.output.find("error"), std::string::npos) << r.output;
}

TEST_F(TrainCommand, InputThatDoesNotMatchTheDataIsOneLineNamingInputShape) {
  const auto r = train("input_shape: [1, 28, 29] layers { flatten {} } "
                       "layers { linear { in_features: 812 out_features: 10 } }");
  EXPECT_NE(r.status, 0) << r.output;
  const size_t at = r.output.rfind("lockstep: error:");
  ASSERT_NE(at, std::string::npos) << r.output;
  const std::string last = r.output.substr(at);
  EXPECT_EQ(std::count(last.begin(), last.end(), '\n'), 1) << last;
  EXPECT_NE(last.find("model.input_shape: [1, 28, 29] does not fit the data"),
            std::string::npos)
      << last;
  EXPECT_EQ(last.find("failed at"), std::string::npos) << last;
}

}  // namespace
}  // namespace lockstep
