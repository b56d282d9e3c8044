// TFRecord framing byte by byte, and an events file read back record by record: every length and
// data CRC checked, the first record TensorBoard's file version, then the scalars as written.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "launcher/tensorboard/crc32c.h"
#include "launcher/tensorboard/event_file.h"
#include "launcher/tensorboard/metrics_events.h"
#include "launcher/tensorboard/record_writer.h"
#include "proto/tensorboard_events.pb.h"
#include "runtime/check.h"

namespace lockstep::tensorboard {
namespace {

namespace fs = std::filesystem;

uint64_t le(const std::string& s, size_t at, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[at + static_cast<size_t>(i)]);
  return v;
}

// The records of a TFRecord file; fails the test on a bad CRC or a torn record.
std::vector<std::string> read_records(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string s = ss.str();
  std::vector<std::string> out;
  for (size_t at = 0; at < s.size();) {
    EXPECT_LE(at + 12, s.size()) << "torn header at byte " << at;
    if (at + 12 > s.size()) break;
    const uint64_t n = le(s, at, 8);
    EXPECT_EQ(le(s, at + 8, 4), masked_crc32c(crc32c(s.substr(at, 8)))) << "length CRC at byte " << at;
    EXPECT_LE(at + 12 + n + 4, s.size()) << "torn record at byte " << at;
    if (at + 12 + n + 4 > s.size()) break;
    const std::string data = s.substr(at + 12, n);
    EXPECT_EQ(le(s, at + 12 + n, 4), masked_crc32c(crc32c(data))) << "data CRC at byte " << at;
    out.push_back(data);
    at += 12 + n + 4;
  }
  return out;
}

class EventFile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("lockstep_tb_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST(RecordFraming, LengthCrcDataCrcLittleEndian) {
  const std::string data = "abc";
  const std::string f = frame_record(data);
  ASSERT_EQ(f.size(), 8u + 4u + data.size() + 4u);
  EXPECT_EQ(f.substr(0, 8), std::string("\x03\0\0\0\0\0\0\0", 8));
  EXPECT_EQ(le(f, 8, 4), masked_crc32c(crc32c(f.substr(0, 8))));
  EXPECT_EQ(f.substr(12, 3), data);
  EXPECT_EQ(le(f, 15, 4), masked_crc32c(crc32c(data)));
  // A length above 255 spans two bytes, low byte first.
  std::string len = frame_record(std::string(300, 'x')).substr(0, 8);
  EXPECT_EQ(le(len, 0, 8), 300u);
}

TEST_F(EventFile, NamedAsTensorBoardNamesItAndReadsBack) {
  std::string path;
  {
    EventFileWriter w(dir_.string());
    path = w.path();
    w.add_scalars(7, {{"train/loss", 0.25f}, {"train/lr", 0.1f}});
    w.add_scalars(8, {{"train/grad_norm", std::nanf("")}});
    w.add_scalars(9, {});  // nothing
    w.session_start(12);
  }
  const std::string name = fs::path(path).filename().string();
  EXPECT_TRUE(std::regex_match(name, std::regex("events\\.out\\.tfevents\\.[0-9]{10}\\..+\\." +
                                                std::to_string(::getpid()) + "\\.[0-9]+")))
      << name;
  EXPECT_EQ(fs::path(path).parent_path(), dir_);

  const auto records = read_records(path);
  ASSERT_EQ(records.size(), 4u);
  ::tensorboard::Event e;
  ASSERT_TRUE(e.ParseFromString(records[0]));
  EXPECT_EQ(e.file_version(), "brain.Event:2");
  EXPECT_GT(e.wall_time(), 1.7e9);  // seconds since 1970, not milliseconds or a monotonic clock

  ASSERT_TRUE(e.ParseFromString(records[1]));
  EXPECT_EQ(e.step(), 7);
  ASSERT_EQ(e.summary().value_size(), 2);
  EXPECT_EQ(e.summary().value(0).tag(), "train/loss");
  EXPECT_EQ(e.summary().value(0).simple_value(), 0.25f);
  EXPECT_EQ(e.summary().value(1).tag(), "train/lr");
  EXPECT_EQ(e.summary().value(1).simple_value(), 0.1f);

  ASSERT_TRUE(e.ParseFromString(records[2]));
  EXPECT_EQ(e.step(), 8);
  ASSERT_EQ(e.summary().value_size(), 1);
  EXPECT_TRUE(std::isnan(e.summary().value(0).simple_value()));

  ASSERT_TRUE(e.ParseFromString(records[3]));
  EXPECT_EQ(e.step(), 12);
  EXPECT_EQ(e.session_log().status(), ::tensorboard::SessionLog::START);
}

TEST_F(EventFile, ZeroIsWrittenNotLeftOut) {
  // proto3 leaves a plain float 0 off the wire; simple_value is in a oneof, so 0 is a point.
  std::string path;
  {
    EventFileWriter w(dir_.string());
    path = w.path();
    w.add_scalars(1, {{"train/lr", 0.0f}});
  }
  const auto records = read_records(path);
  ASSERT_EQ(records.size(), 2u);
  ::tensorboard::Event e;
  ASSERT_TRUE(e.ParseFromString(records[1]));
  ASSERT_EQ(e.summary().value_size(), 1);
  EXPECT_TRUE(e.summary().value(0).has_simple_value());
}

// A run's file opens with START at its first step, after the file version.
TEST_F(EventFile, MetricsEventsStartAtTheRunsFirstStep) {
  const auto first_events = [&](int64_t first_step) {
    std::string path;
    {
      MetricsEvents sink(dir_.string(), first_step);
      path = sink.path();
      sink.write("{\"kind\":\"step\",\"epoch\":3,\"step\":33,\"loss\":0.5,\"samples_per_sec\":1.0,\"lr\":0.1}\n");
    }
    std::vector<::tensorboard::Event> out;
    for (const std::string& r : read_records(path)) {
      out.emplace_back();
      EXPECT_TRUE(out.back().ParseFromString(r));
    }
    fs::remove(path);
    return out;
  };
  for (int64_t first : {1, 33}) {
    const auto e = first_events(first);
    ASSERT_EQ(e.size(), 3u);
    EXPECT_EQ(e[0].file_version(), "brain.Event:2");
    EXPECT_EQ(e[1].session_log().status(), ::tensorboard::SessionLog::START);
    EXPECT_EQ(e[1].step(), first);
    EXPECT_EQ(e[2].step(), 33);
    EXPECT_EQ(e[2].summary().value(0).tag(), "train/loss");
  }
}

TEST_F(EventFile, UnwritableDirectoryIsOneLineNamingTheFile) {
  const std::string missing = (dir_ / "no" / "such").string();
  try {
    EventFileWriter w(missing);
    FAIL() << "no error for " << missing;
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("cannot create TensorBoard events file " + missing + "/events.out.tfevents."),
              std::string::npos)
        << what;
    EXPECT_NE(what.find("No such file or directory"), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
    EXPECT_EQ(what.find(".cc:"), std::string::npos) << "a source path reached the user: " << what;
  }
}

}  // namespace
}  // namespace lockstep::tensorboard
