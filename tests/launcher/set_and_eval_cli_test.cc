// `lockstep train` as a user runs it: --set overrides reach the run (epochs, eval.top_k), bad ones
// and the job checks on overridden values fail with one line naming the --set; the metrics file's
// epoch lines carry top-k, per-class accuracy and the confusion matrix, consistent with the test
// accuracy and the test set size, and the summary shows them.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include "tests/launcher/data_faults.h"
#include "tests/launcher/run_command.h"

namespace fs = std::filesystem;
using lockstep::testing::run_command;

namespace {

class SetCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("lockstep_set_cli_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    lockstep::testing::write_good_data(dir_ / "data");  // 20 train and 20 test samples
    job_ = lockstep::testing::write_fault_job(dir_, "reference: \"fmnist-mlp\"", (dir_ / "data").string());
  }
  void TearDown() override { fs::remove_all(dir_); }
  static void expect_one_line_error(const lockstep::testing::CommandResult& r, const std::string& want) {
    EXPECT_NE(r.status, 0) << r.output;
    const auto at = r.output.rfind("lockstep: error: ");
    ASSERT_NE(at, std::string::npos) << r.output;
    EXPECT_EQ(r.output.substr(at), "lockstep: error: " + want + "\n");
  }
  fs::path dir_;
  std::string job_;
};

std::vector<double> numbers(const std::string& s) {
  std::vector<double> v;
  const std::regex num("-?[0-9][0-9.eE+-]*");
  for (auto it = std::sregex_iterator(s.begin(), s.end(), num); it != std::sregex_iterator(); ++it)
    v.push_back(std::stod(it->str()));
  return v;
}

TEST_F(SetCli, OverridesReachTheRunAndEvalMetricsAreWritten) {
  const auto r = run_command("train " + job_ + " --set epochs=2 --set eval.top_k=[1,3] --set optimizer.lr=0.01", 120);
  ASSERT_EQ(r.status, 0) << r.output;
  std::ifstream in(dir_ / "m.jsonl");
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  ASSERT_EQ(lines.size(), 2u) << "--set epochs=2";
  for (const std::string& line : lines) {
    SCOPED_TRACE(line);
    std::smatch m;
    ASSERT_TRUE(std::regex_search(line, m, std::regex("\"test_accuracy\":([0-9.]+)")));
    const double acc = std::stod(m[1]);
    ASSERT_TRUE(std::regex_search(line, m, std::regex("\"top_k_accuracy\":\\{\"1\":([0-9.]+),\"3\":([0-9.]+)\\}")));
    EXPECT_DOUBLE_EQ(std::stod(m[1]), acc) << "top-1 is the accuracy";
    EXPECT_GE(std::stod(m[2]), acc);
    ASSERT_TRUE(std::regex_search(line, m, std::regex("\"confusion_matrix\":(\\[\\[.*\\]\\])")));
    const std::vector<double> cells = numbers(m[1]);
    ASSERT_EQ(cells.size(), 100u);
    double total = 0, diagonal = 0;
    for (size_t i = 0; i < 100; ++i) total += cells[i], diagonal += i % 11 == 0 ? cells[i] : 0;
    EXPECT_EQ(total, 20) << "every test sample once";
    EXPECT_NEAR(diagonal / total, acc, 1e-6);
    ASSERT_TRUE(std::regex_search(line, m, std::regex("\"per_class_accuracy\":\\[([^\\]]*)\\]")));
    const std::string per_class = m[1];
    size_t k = 0;
    for (size_t b = 0; k < 10; ++k) {  // each class: the diagonal over its row, or null
      const size_t e = per_class.find(',', b);
      const std::string item = per_class.substr(b, e - b);
      double row = 0;
      for (size_t j = 0; j < 10; ++j) row += cells[k * 10 + j];
      if (row == 0) EXPECT_EQ(item, "null") << "class " << k;
      else EXPECT_NEAR(std::stod(item), cells[k * 11] / row, 1e-6) << "class " << k;
      if (e == std::string::npos) break;
      b = e + 1;
    }
    EXPECT_EQ(k, 9u);
  }
  EXPECT_NE(r.output.find("top-3 accuracy "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("per-class accuracy: 0 "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("confusion matrix (rows: true class, columns: predicted class):"), std::string::npos)
      << r.output;
}

TEST_F(SetCli, BadOverridesAndCheckedValuesFailOnOneLine) {
  expect_one_line_error(run_command("train " + job_ + " --set optimizer.lrr=0.1"),
                        "--set optimizer.lrr=0.1: optimizer has no field lrr (known: lr, weight_decay, sgd, adamw, adam, rmsprop, lars, lamb)");
  expect_one_line_error(run_command("train " + job_ + " --set batch_size=four"),
                        "--set batch_size=four: Expected integer, got: four");
  const auto lr = run_command("train " + job_ + " --set optimizer.lr=-1");
  EXPECT_NE(lr.status, 0);
  EXPECT_NE(lr.output.find("lockstep: error: " + job_ + ": optimizer.lr: "), std::string::npos) << lr.output;
  EXPECT_NE(lr.output.find(" (set by --set optimizer.lr=-1)\n"), std::string::npos) << lr.output;
  expect_one_line_error(run_command("train " + job_ + " --set eval.top_k=5,11"),
                        job_ + ": eval.top_k[1]: k 11 exceeds the model's 10 classes (allowed: [1, 10]) "
                               "(set by --set eval.top_k=5,11)");
  expect_one_line_error(run_command("train " + job_ + " --set"), "--set needs a value");
}

}  // namespace
