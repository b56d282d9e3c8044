// Bad input through the lockstep command: each gives a one-line error naming the path, layer or
// field at fault, and a non-zero exit.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <vector>

#include "tests/launcher/data_faults.h"
#include "runtime/precision.h"
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

TEST_F(BadInput, PrecisionParsesAndABadValueNamesTheField) {
  auto ok = run_command("train " + job("reference: \"fmnist-mlp\"", "precision: FP32\n"), 120);
  EXPECT_EQ(ok.status, 0) << ok.output;
  const std::string path = job("reference: \"fmnist-mlp\"", "precision: FP16\n");
  auto r = run_command("train " + path);
  expect_one_line_error(r, path + ":");
  // Named like the numeric case, with the known values, at the value's own line.
  EXPECT_NE(r.output.find(":1: precision: unknown value FP16 (known: FP32, BF16)"), std::string::npos) << r.output;
  expect_one_line_error(run_command("train " + job("reference: \"fmnist-mlp\"", "precision: 7\n")),
                        "precision: unknown value 7 (known: FP32, BF16)");
}

// oneDNN reads ONEDNN_MAX_CPU_ISA once per process: capped at AVX2 it has no bf16 kernels (2.6), and
// a BF16 job is refused in one line naming the field, the value and the ISA; capped at
// AVX512_CORE (bf16 emulated) the same job trains.
TEST_F(BadInput, Bf16IsRefusedWhereOneDnnHasNoBf16Kernels) {
  const std::string path = job("reference: \"fmnist-cnn\"", "precision: BF16\n");
  auto refused = lockstep::testing::capture("ONEDNN_MAX_CPU_ISA=AVX2 timeout -k 5 120 " +
                                            lockstep::testing::lockstep_binary() + " train " + path + " 2>&1");
  expect_one_line_error(refused, path + ": precision: BF16 needs a CPU with AVX-512 (oneDNN ISA avx512_core or "
                                        "newer); this CPU's is ");
  if (!lockstep::precision_unsupported(lockstep::Precision::kBF16).empty()) GTEST_SKIP() << "no AVX-512 here";
  auto emulated = lockstep::testing::capture("ONEDNN_MAX_CPU_ISA=AVX512_CORE timeout -k 5 120 " +
                                             lockstep::testing::lockstep_binary() + " train " + path + " 2>&1");
  EXPECT_EQ(emulated.status, 0) << emulated.output;
  auto native = run_command("train " + path, 120);
  EXPECT_EQ(native.status, 0) << native.output;
}

TEST_F(BadInput, MissingJobFileNamesThePath) {
  expect_one_line_error(run_command("train " + (dir_ / "nope.textproto").string()),
                        (dir_ / "nope.textproto").string());
}

// Each data fault is refused by `lockstep train` from the headers, with one line naming the file or
// field (before: a bare read error after loading, or a 0-sample job that exited 0).
TEST_F(BadInput, EveryDataFaultIsOneLineBeforeTraining) {
  for (const auto& f : lockstep::testing::data_faults()) {
    SCOPED_TRACE(f.name);
    const fs::path data = dir_ / ("data_" + f.name);
    lockstep::testing::write_good_data(data);
    f.damage(data);
    std::string data_dir = data.string();
    if (f.data_is_file) data_dir = (data / "train-images-idx3-ubyte").string();
    const std::string job = lockstep::testing::write_fault_job(dir_, f.model, data_dir);
    auto r = run_command("train " + job, 60);
    expect_one_line_error(r, f.expect);
    EXPECT_NE(r.output.find(job + ": "), std::string::npos) << "the job file is not named: " << r.output;
    EXPECT_EQ(r.output.find("job data-fault:"), std::string::npos) << "training started: " << r.output;
  }
}

// Command-line numbers: the whole argument, in range, else one line naming the option and value.
TEST_F(BadInput, TrainOptionsAreParsedStrictly) {
  const std::string j = job("reference: \"fmnist-mlp\"");
  struct Case {
    std::string args, expect;
  };
  for (const Case& c : std::vector<Case>{
           {"--epochs abc", "--epochs: expected a whole number in [1, 1000000], got \"abc\""},
           {"--epochs -5", "--epochs: expected a whole number in [1, 1000000], got \"-5\""},
           {"--epochs 0", "--epochs: expected a whole number in [1, 1000000], got \"0\""},
           {"--epochs 3x", "got \"3x\""},
           {"--epochs 99999999999999999999", "got \"99999999999999999999\""},
           {"--seed -5", "--seed: expected a whole number in [0, 18446744073709551615], got \"-5\""},
           {"--seed 1.5", "--seed: expected a whole number"}}) {
    SCOPED_TRACE(c.args);
    auto r = run_command("train " + j + " " + c.args, 60);
    expect_one_line_error(r, c.expect);
    for (const char* raw : {"stoll", "stod", "stoul", "failed at"}) EXPECT_EQ(r.output.find(raw), std::string::npos) << r.output;
  }
}

TEST_F(BadInput, JobPathThatIsADirectorySaysSo) {
  auto r = run_command("train " + dir_.string());
  expect_one_line_error(r, dir_.string() + ": is a directory, not a job file");
  EXPECT_EQ(r.output.find("model:"), std::string::npos) << r.output;
}

TEST_F(BadInput, CtlWaitAndTokenFileAreCheckedBeforeConnecting) {
  auto r = run_command("ctl status --coordinator 127.0.0.1:1 --wait abc");
  expect_one_line_error(r, "--wait: expected a number in [0, 604800], got \"abc\"");
  EXPECT_EQ(r.output.find("stod"), std::string::npos) << r.output;
  r = run_command("ctl status --coordinator 127.0.0.1:1 --wait nan");
  expect_one_line_error(r, "--wait: expected a number");
  r = run_command("ctl status --coordinator 127.0.0.1:1 --token-file " + dir_.string());
  EXPECT_EQ(r.status, 3) << r.output;
  EXPECT_NE(r.output.find("token file " + dir_.string() + " is a directory"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("is empty"), std::string::npos) << r.output;
}

TEST_F(BadInput, CoordinatorAddressPortIsChecked) {
  for (const char* cmd : {"ctl status --coordinator 127.0.0.1:99999 --token-file /dev/null",
                          "worker --coordinator 127.0.0.1:99999"}) {
    auto r = run_command(cmd, 20);
    expect_one_line_error(r, "--coordinator 127.0.0.1:99999: the port: expected a whole number in [1, 65535]");
  }
}

TEST_F(BadInput, AJobFileIsARegularFileOfBoundedSize) {
  expect_one_line_error(run_command("train /dev/zero", 20), "/dev/zero: is a character device, not a regular file");
  const std::string big = write("big.textproto", std::string((16u << 20) + 1, ' '));
  expect_one_line_error(run_command("train " + big, 20), "a job file is at most 16777216 bytes");
}

TEST_F(BadInput, EmptyOptionValuesAndHelp) {
  const std::string j = job("reference: \"fmnist-mlp\"");
  expect_one_line_error(run_command("launch -n 1 " + j + " --run-dir ''", 20), "--run-dir: the value is empty");
  expect_one_line_error(run_command("train " + j + " --metrics ''", 20), "--metrics: the value is empty");
  auto r = run_command("train --help", 20);
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("usage: lockstep train"), std::string::npos) << r.output;
}

// The command line (CLI11, launcher/cli.h): one line naming the option or word at fault; an
// option's value is the next word whatever it looks like; --help wins over a bad value beside it.
TEST_F(BadInput, CommandLineErrorsAreOneLineNamingTheWord) {
  const std::string j = job("reference: \"fmnist-mlp\"");
  expect_one_line_error(run_command("train " + j + " --bogus", 20), "unknown option --bogus; see lockstep train --help");
  expect_one_line_error(run_command("train " + j + " extra", 20), "unexpected argument extra; see lockstep train --help");
  expect_one_line_error(run_command("train " + j + " --epochs=abc", 20),
                        "--epochs: expected a whole number in [1, 1000000], got \"abc\"");
  expect_one_line_error(run_command("train " + j + " --epochs", 20), "--epochs needs a value");
  expect_one_line_error(
      run_command("launch -n 1 " + j + " --mpirun-arg -x --mpirun-arg=--oversubscribe --srun-arg -v --epochs abc", 20),
      "--epochs: expected a whole number in [1, 1000000], got \"abc\"");
  auto r = run_command("launch -n 1 " + j + " --mpirun-arg", 20);
  EXPECT_EQ(r.status, 2) << r.output;
  expect_one_line_error(r, "--mpirun-arg needs a value");
  r = run_command("launch -n abc " + j + " --help", 20);
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("usage: lockstep launch -n N"), std::string::npos) << r.output;
  r = run_command("--bogus", 20);
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("lockstep: unknown command \"--bogus\""), std::string::npos) << r.output;
}

TEST_F(BadInput, CoordinatorNumbersAreParsedStrictly) {
  const std::string j = job("reference: \"fmnist-mlp\"");
  auto r = run_command("coordinator " + j + " -n 4294967297");
  expect_one_line_error(r, "-n: expected a whole number in [1, 1048576], got \"4294967297\"");
  r = run_command("coordinator " + j + " -n 2 --port 70000");
  expect_one_line_error(r, "--port: expected a whole number in [0, 65535], got \"70000\"");
}

}  // namespace
