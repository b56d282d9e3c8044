// Bad input through the lockstep command: each gives a one-line error naming the path, layer or
// field at fault, and a non-zero exit.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <vector>

#include "tests/launcher/run_command.h"

namespace fs = std::filesystem;
using lockstep::testing::idx_bytes;
using lockstep::testing::run_command;

namespace {

class BadInput : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("lockstep_bad_input_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "data");
    for (const char* split : {"train", "t10k"}) {
      write(std::string("data/") + split + "-images-idx3-ubyte", idx_bytes({20, 28, 28}, 20 * 784));
      write(std::string("data/") + split + "-labels-idx1-ubyte", idx_bytes({20}, 20));
    }
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& rel, const std::string& bytes) {
    const fs::path p = dir_ / rel;
    std::ofstream(p, std::ios::binary) << bytes;
    return p.string();
  }
  // A job of the given model block on the temp data set.
  std::string job(const std::string& model_block, const std::string& extra = "") {
    return write("job.textproto", "model { " + model_block + " }\ndata { dir: \"" + (dir_ / "data").string() +
                                      "\" }\noptimizer { lr: 0.05 sgd { momentum: 0.9 } }\nepochs: 1\n"
                                      "batch_size: 4\nmetrics_file: \"" + (dir_ / "m.jsonl").string() +
                                      "\"\n" + extra);
  }
  static void expect_one_line_error(const lockstep::testing::CommandResult& r, const std::string& needle) {
    EXPECT_NE(r.status, 0) << r.output;
    const std::string last = r.output.substr(r.output.rfind("lockstep: error:") == std::string::npos
                                                 ? 0
                                                 : r.output.rfind("lockstep: error:"));
    EXPECT_EQ(last.find("lockstep: error:"), 0u) << r.output;
    EXPECT_EQ(std::count(last.begin(), last.end(), '\n'), 1) << "not one line: " << last;
    EXPECT_NE(last.find(needle), std::string::npos) << "expected \"" << needle << "\" in: " << last;
  }

  fs::path dir_;
};

TEST_F(BadInput, TinyJobRunsSoTheCasesBelowFailForTheirOwnReason) {
  auto r = run_command("train " + job("reference: \"fmnist-mlp\""), 120);
  EXPECT_EQ(r.status, 0) << r.output;
}

TEST_F(BadInput, MissingDatasetFileNamesThePath) {
  fs::remove(dir_ / "data/train-labels-idx1-ubyte");
  expect_one_line_error(run_command("train " + job("reference: \"fmnist-mlp\"")),
                        (dir_ / "data/train-labels-idx1-ubyte").string());
}

TEST_F(BadInput, MissingDatasetDirNamesThePath) {
  fs::remove_all(dir_ / "data");
  expect_one_line_error(run_command("train " + job("reference: \"fmnist-mlp\"")), (dir_ / "data").string());
}

TEST_F(BadInput, TruncatedDatasetFileNamesThePath) {
  const std::string full = idx_bytes({20, 28, 28}, 20 * 784);
  const std::string path = write("data/t10k-images-idx3-ubyte", full.substr(0, full.size() - 100));
  auto r = run_command("train " + job("reference: \"fmnist-mlp\""));
  expect_one_line_error(r, path);
  EXPECT_NE(r.output.find("truncated"), std::string::npos) << r.output;
}

TEST_F(BadInput, TruncatedGzipDatasetFileNamesThePath) {
  if (!fs::exists(std::string(LOCKSTEP_DATA_DIR) + "/t10k-labels-idx1-ubyte.gz")) GTEST_SKIP() << "no data set";
  std::ifstream in(std::string(LOCKSTEP_DATA_DIR) + "/t10k-labels-idx1-ubyte.gz", std::ios::binary);
  std::string gz((std::istreambuf_iterator<char>(in)), {});
  fs::remove(dir_ / "data/t10k-labels-idx1-ubyte");
  const std::string path = write("data/t10k-labels-idx1-ubyte.gz", gz.substr(0, gz.size() / 2));
  expect_one_line_error(run_command("train " + job("reference: \"fmnist-mlp\"")), path);
}

TEST_F(BadInput, WrongIdxMagicNamesThePath) {
  const std::string path = write("data/train-images-idx3-ubyte", idx_bytes({20, 28, 28}, 20 * 784, 0xdeadbeef));
  auto r = run_command("train " + job("reference: \"fmnist-mlp\""));
  expect_one_line_error(r, path);
  EXPECT_NE(r.output.find("magic"), std::string::npos) << r.output;
}

TEST_F(BadInput, UnknownModelNamesTheField) {
  auto r = run_command("train " + job("reference: \"resnet-9000\""));
  expect_one_line_error(r, "model.reference");
  EXPECT_NE(r.output.find("resnet-9000"), std::string::npos) << r.output;
}

TEST_F(BadInput, ShapeMismatchBetweenLayersNamesTheLayer) {
  auto r = run_command("train " + job("input_shape: [784] layers { linear { in_features: 784 out_features: 64 } } "
                                      "layers { relu {} } layers { linear { in_features: 32 out_features: 10 } }"));
  expect_one_line_error(r, "model.layers[2]");
  EXPECT_NE(r.output.find("Linear(32->10)"), std::string::npos) << r.output;
}

TEST_F(BadInput, SyntaxErrorGivesFileLineAndColumn) {
  const std::string path = write("syntax.textproto", "model { reference: \"fmnist-mlp\" }\nepochs: \"three\"\n");
  expect_one_line_error(run_command("train " + path), path + ":2:");
}

TEST_F(BadInput, UnknownFieldGivesFileLineAndColumn) {
  const std::string path = write("field.textproto", "model { reference: \"fmnist-mlp\" }\n\nepoch: 3\n");
  auto r = run_command("train " + path);
  expect_one_line_error(r, path + ":3:");
  EXPECT_NE(r.output.find("epoch"), std::string::npos) << r.output;
}

TEST_F(BadInput, BadValueNamesTheField) {
  expect_one_line_error(run_command("train " + job("reference: \"fmnist-mlp\"", "batch_size: -3\n")), "batch_size");
}

TEST_F(BadInput, MissingJobFileNamesThePath) {
  expect_one_line_error(run_command("train " + (dir_ / "nope.textproto").string()),
                        (dir_ / "nope.textproto").string());
}

}  // namespace
