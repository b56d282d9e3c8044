// Accuracy of the reference recipe through the lockstep command: 3 epochs of SGD (lr 0.05,
// momentum 0.9, batch 128) on Fashion-MNIST, for three seeds each. Thresholds sit just below the
// PyTorch reference runs of the same recipe (fmnist-cnn 0.904, fmnist-mlp 0.875).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>

#include "tests/launcher/run_command.h"

namespace fs = std::filesystem;
using lockstep::testing::run_command;
using lockstep::testing::source_path;

namespace {

struct Case {
  const char* model;
  int seed;
  double min_accuracy;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.model << " seed " << c.seed; }

class Accuracy : public ::testing::TestWithParam<Case> {};

TEST_P(Accuracy, ThreeEpochsReachTheBar) {
  if (!fs::exists(std::string(LOCKSTEP_DATA_DIR) + "/train-images-idx3-ubyte.gz")) GTEST_SKIP() << "no data set";
  const Case c = GetParam();
  const std::string metrics = (fs::temp_directory_path() / ("lockstep_acc_" + std::string(c.model) + "_" +
                                                             std::to_string(c.seed) + ".jsonl")).string();
  auto r = run_command("train " + source_path("launcher/jobs/" + std::string(c.model) + ".textproto") +
                           " --epochs 3 --seed " + std::to_string(c.seed) + " --metrics " + metrics,
                       1500);
  ASSERT_EQ(r.status, 0) << r.output;
  std::ifstream in(metrics);
  std::string line, last;
  int lines = 0;
  while (std::getline(in, line)) {
    last = line;
    ++lines;
  }
  ASSERT_EQ(lines, 3) << "one metrics line per epoch";
  std::smatch m;
  ASSERT_TRUE(std::regex_search(last, m, std::regex("\"test_accuracy\":([0-9.]+)"))) << last;
  const double acc = std::stod(m[1]);
  std::printf("%s seed %d: test accuracy %.4f after 3 epochs\n", c.model, c.seed, acc);
  EXPECT_GE(acc, c.min_accuracy) << r.output;
  fs::remove(metrics);
}

INSTANTIATE_TEST_SUITE_P(Recipe, Accuracy,
                         ::testing::Values(Case{"fmnist-cnn", 1, 0.895}, Case{"fmnist-cnn", 2, 0.895},
                                           Case{"fmnist-cnn", 3, 0.895}, Case{"fmnist-mlp", 1, 0.865},
                                           Case{"fmnist-mlp", 2, 0.865}, Case{"fmnist-mlp", 3, 0.865}),
                         [](const auto& info) {
                           std::string n = std::string(info.param.model) + "_seed" + std::to_string(info.param.seed);
                           for (char& ch : n)
                             if (ch == '-') ch = '_';
                           return n;
                         });

}  // namespace
