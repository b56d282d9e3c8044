// RUN_DIR/coordinator.json and result.json: written atomically with the proto's field names,
// read back by ctl --run-dir, refused when missing or stale (its pid dead on this host), the
// address file removed when its owner goes, a previous run's result removed when a new one starts.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "launcher/coordinator/run_files.h"
#include "runtime/check.h"

namespace lockstep {
namespace {

namespace fs = std::filesystem;

class RunFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / ("lockstep_run_files_" + std::to_string(::getpid()))).string();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  nlohmann::json read_json(const std::string& name) {
    std::ifstream in(dir_ + "/" + name);
    return nlohmann::json::parse(in);
  }
  std::string dir_;
};

TEST_F(RunFiles, AddressWrittenReadAndRemoved) {
  std::ofstream(dir_ + "/result.json") << "{\"job\": \"the previous run\"}\n";
  {
    CoordinatorFiles files;
    files.started(dir_, address_record("127.0.0.1:4321", false, "j", dir_ + "/token"));
    EXPECT_FALSE(fs::exists(dir_ + "/result.json")) << "a previous run's result outlived the new start";
    const proto::CoordinatorAddress a = read_address_file(dir_);
    EXPECT_EQ(a.address(), "127.0.0.1:4321");
    EXPECT_EQ(a.pid(), ::getpid());
    EXPECT_EQ(a.job(), "j");
    EXPECT_EQ(a.token_file(), dir_ + "/token");
    const nlohmann::json j = read_json("coordinator.json");
    EXPECT_EQ(j["address"], "127.0.0.1:4321");
    EXPECT_EQ(j["pid"], ::getpid());  // a JSON number, not proto3's quoted int64
    EXPECT_FALSE(fs::exists(dir_ + "/coordinator.json.tmp"));

    proto::JobResult r;
    r.set_job("j");
    r.set_exit_status(3);
    r.set_step(1234567890123);
    r.set_last_test_accuracy(0.8765432109876543);
    proto::TopKAccuracy& t = *r.add_last_top_k_accuracy();
    t.set_k(5);
    t.set_accuracy(0.99);
    files.ended(r);
    const nlohmann::json res = read_json("result.json");
    EXPECT_EQ(res["exit_status"], 3);
    EXPECT_EQ(res["step"], 1234567890123);
    EXPECT_EQ(res["last_test_accuracy"].get<double>(), 0.8765432109876543);  // round-trips exactly
    EXPECT_EQ(res["last_top_k_accuracy"][0]["k"], 5);
    EXPECT_EQ(res["complete"], false);  // every field, defaults too
    EXPECT_EQ(res["failure"], "");
  }
  EXPECT_FALSE(fs::exists(dir_ + "/coordinator.json")) << "the address outlived its coordinator";
  EXPECT_TRUE(fs::exists(dir_ + "/result.json"));
  try {
    read_address_file(dir_);
    ADD_FAILURE() << "a missing coordinator.json was read";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no coordinator.json"), std::string::npos) << e.what();
  }
}

TEST_F(RunFiles, StaleAndBrokenAddressFilesAreRefused) {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  int st = 0;
  ::waitpid(child, &st, 0);  // its pid is no longer alive
  proto::CoordinatorAddress a = address_record("127.0.0.1:4321", false, "j", "");
  a.set_pid(child);
  write_file_atomically(dir_ + "/coordinator.json", message_json(a), 0644);
  try {
    read_address_file(dir_);
    ADD_FAILURE() << "a stale coordinator.json was taken";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("is stale"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("pid " + std::to_string(child)), std::string::npos) << e.what();
  }
  std::ofstream(dir_ + "/coordinator.json") << "{\"address\": 7";
  try {
    read_address_file(dir_);
    ADD_FAILURE() << "broken JSON was taken";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("coordinator.json: not a coordinator address"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace lockstep
