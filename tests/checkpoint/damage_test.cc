// Damage detection: truncating or flipping one byte of any checkpoint file (at its first and last
// byte and between) is caught by read_checkpoint with an error naming the directory and that file,
// and latest_valid_checkpoint falls back to the previous checkpoint, reporting the damaged one.
#include <gtest/gtest.h>
#include <zlib.h>

#include "runtime/check.h"
#include "tests/checkpoint/checkpoint_test_util.h"

namespace lockstep::testing {
namespace {

struct Damage {
  std::string label;
  std::function<std::string(std::string)> apply;  // original bytes -> damaged bytes
};

std::vector<Damage> damages(size_t size) {
  std::vector<Damage> d = {
      {"truncated by one byte", [](std::string s) { return s.substr(0, s.size() - 1); }},
      {"truncated to half", [](std::string s) { return s.substr(0, s.size() / 2); }},
      {"emptied", [](std::string) { return std::string(); }},
      {"one byte appended", [](std::string s) { return s + '\0'; }},
  };
  for (size_t at : {size_t{0}, size_t{1}, size_t{4}, size / 3, size / 2, size - 2, size - 1}) {
    for (unsigned char mask : {0x01, 0xff}) {
      d.push_back({"byte " + std::to_string(at) + " xor " + std::to_string(mask), [at, mask](std::string s) {
                     s[at] = static_cast<char>(s[at] ^ mask);
                     return s;
                   }});
    }
  }
  return d;
}

std::string error_of(const std::string& dir) {
  try {
    read_checkpoint(dir);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

class Damaged : public ::testing::TestWithParam<std::string> {};

TEST_P(Damaged, IsNamedAndSkipped) {
  const std::string file = GetParam();
  ScratchDir run;
  const Checkpoint older = random_checkpoint(100, 1);
  write_checkpoint(run.path(), older, 0);
  const std::string dir = write_checkpoint(run.path(), random_checkpoint(200, 2), 0);
  const std::string path = dir + "/" + file;
  const std::string original = read_bytes(path);
  ASSERT_GT(original.size(), 8u);
  for (const Damage& d : damages(original.size())) {
    SCOPED_TRACE(file + " " + d.label);
    write_bytes(path, d.apply(original));
    const std::string err = error_of(dir);
    EXPECT_EQ(err.rfind("checkpoint " + dir + ": " + file + ": ", 0), 0u) << err;

    std::vector<std::string> warnings;
    auto latest = latest_valid_checkpoint(run.path(), [&](const std::string& w) { warnings.push_back(w); });
    ASSERT_TRUE(latest.has_value());
    EXPECT_EQ(latest->first, ckpt_dir(run.path(), 100));
    expect_same(latest->second, older);
    ASSERT_EQ(warnings.size(), 1u);
    EXPECT_EQ(warnings[0].rfind("checkpoint " + dir + " is damaged (" + file + ": ", 0), 0u) << warnings[0];
    EXPECT_NE(warnings[0].find("; trying the previous one"), std::string::npos) << warnings[0];
  }
  write_bytes(path, original);
  EXPECT_NO_THROW(read_checkpoint(dir)) << "restoring the bytes repairs it: the damage was the cause";
}

INSTANTIATE_TEST_SUITE_P(EveryFile, Damaged,
                         ::testing::Values("state.pb", "model.pb", "optimizer.pb", "MANIFEST"),
                         [](const auto& info) {
                           std::string n = info.param;
                           return n == "MANIFEST" ? n : n.substr(0, n.find('.'));
                         });

// Rewrites MANIFEST so it vouches for the files as they are now (damage it cannot see).
void reseal(const std::string& dir) {
  proto::Manifest m;
  m.set_step(200);
  for (const char* f : {"state.pb", "model.pb", "optimizer.pb"}) {
    const std::string b = read_bytes(dir + "/" + f);
    proto::ManifestEntry* e = m.add_files();
    e->set_file(f);
    e->set_size(b.size());
    e->set_crc32(static_cast<uint32_t>(::crc32(0, reinterpret_cast<const Bytef*>(b.data()), b.size())));
  }
  const std::string body = m.SerializeAsString();
  const uint32_t crc = static_cast<uint32_t>(::crc32(0, reinterpret_cast<const Bytef*>(body.data()), body.size()));
  std::string bytes(4, '\0');
  for (int i = 0; i < 4; ++i) bytes[i] = static_cast<char>(crc >> (8 * i));
  write_bytes(dir + "/MANIFEST", bytes + body);
}

TEST(DamagedCheckpoint, MissingAndUnparsableFilesAreNamed) {
  ScratchDir run;
  const std::string dir = write_checkpoint(run.path(), random_checkpoint(200, 2), 0);
  const std::string model = read_bytes(dir + "/model.pb");
  std::filesystem::remove(dir + "/model.pb");
  EXPECT_EQ(error_of(dir).rfind("checkpoint " + dir + ": model.pb: missing", 0), 0u) << error_of(dir);

  write_bytes(dir + "/model.pb", "\x0a");  // field 1, length missing
  reseal(dir);
  EXPECT_EQ(error_of(dir), "checkpoint " + dir + ": model.pb: unparsable (not a TensorFile)");

  proto::TensorFile f;
  proto::TensorRecord* r = f.add_tensors();
  r->set_name("w");
  r->add_shape(2);
  r->set_data("abc");
  write_bytes(dir + "/model.pb", f.SerializeAsString());
  reseal(dir);
  EXPECT_EQ(error_of(dir),
            "checkpoint " + dir + ": model.pb: tensor 0 'w' has 3 bytes of data, shape (2) needs 8");
}

TEST(DamagedCheckpoint, EveryFileIsVerifiedBeforeAnyIsParsed) {
  ScratchDir run;
  const std::string dir = write_checkpoint(run.path(), random_checkpoint(200, 2), 0);
  write_bytes(dir + "/model.pb", "\x0a");
  reseal(dir);
  const std::string opt = read_bytes(dir + "/optimizer.pb");
  write_bytes(dir + "/optimizer.pb", opt.substr(0, opt.size() - 1));
  EXPECT_EQ(error_of(dir), "checkpoint " + dir + ": optimizer.pb: truncated: size " +
                               std::to_string(opt.size() - 1) + ", manifest says " + std::to_string(opt.size()));
}

TEST(DamagedCheckpoint, NoneValid) {
  ScratchDir run;
  for (uint64_t step : {1, 2}) {
    const std::string dir = write_checkpoint(run.path(), random_checkpoint(step, 1), 0);
    std::filesystem::resize_file(dir + "/optimizer.pb", 10);
  }
  std::vector<std::string> warnings;
  EXPECT_FALSE(latest_valid_checkpoint(run.path(), [&](const std::string& w) { warnings.push_back(w); }));
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_NE(warnings[0].find(ckpt_dir(run.path(), 2)), std::string::npos) << "newest first";
  EXPECT_NE(warnings[1].find(ckpt_dir(run.path(), 1)), std::string::npos);
}

}  // namespace
}  // namespace lockstep::testing
