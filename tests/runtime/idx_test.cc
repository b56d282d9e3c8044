// IDX reading (plain and gzipped, and its one-line errors), data set assembly, and the real
// Fashion-MNIST files under LOCKSTEP_DATA_DIR.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "runtime/check.h"
#include "runtime/data/dataset.h"
#include "runtime/data/idx.h"

namespace lockstep {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

void put_u32(Bytes& b, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(v >> s));
}

// An unsigned-byte IDX file: magic 0x0000080N, the dims, then `data` (which may disagree with dims).
Bytes idx_bytes(const std::vector<uint32_t>& dims, const Bytes& data) {
  Bytes b;
  put_u32(b, 0x800u | static_cast<uint32_t>(dims.size()));
  for (uint32_t d : dims) put_u32(b, d);
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

Bytes iota_bytes(size_t n) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(i * 7 + 3);
  return b;
}

// Each test gets its own directory under the system temp dir, removed afterwards.
class IdxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("lockstep_idx_test_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const Bytes& b, bool gz) {
    const std::string path = (dir_ / name).string();
    if (gz) {
      gzFile f = gzopen(path.c_str(), "wb");
      EXPECT_NE(f, nullptr);
      EXPECT_EQ(gzwrite(f, b.data(), static_cast<unsigned>(b.size())), static_cast<int>(b.size()));
      gzclose(f);
    } else {
      std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
    }
    return path;
  }

  // The message of the Error that read_idx throws for path.
  static std::string error_of(const std::string& path) {
    try {
      read_idx(path);
    } catch (const Error& e) {
      return e.what();
    }
    ADD_FAILURE() << "no error reading " << path;
    return "";
  }

  fs::path dir_;
};

TEST_F(IdxTest, ReadsPlainAndGzip) {
  const Bytes data = iota_bytes(2 * 3 * 4);
  for (bool gz : {false, true}) {
    IdxArray a = read_idx(write(gz ? "a.gz" : "a", idx_bytes({2, 3, 4}, data), gz));
    EXPECT_EQ(a.dims, (std::vector<int64_t>{2, 3, 4})) << "gz=" << gz;
    EXPECT_EQ(a.data, data) << "gz=" << gz;
  }
  IdxArray labels = read_idx(write("l", idx_bytes({5}, {9, 0, 3, 1, 2}), false));
  EXPECT_EQ(labels.dims, std::vector<int64_t>{5});
  EXPECT_EQ(labels.data, (Bytes{9, 0, 3, 1, 2}));
}

TEST_F(IdxTest, BadMagicNamesPathAndMagic) {
  Bytes b = idx_bytes({4}, iota_bytes(4));
  b[2] = 0x09;  // signed-byte type
  for (bool gz : {false, true}) {
    const std::string path = write(gz ? "m.gz" : "m", b, gz);
    EXPECT_EQ(error_of(path), path + ": IDX magic 0x00000901 says the file holds signed byte values; expected "
                                     "0x0000080N (unsigned bytes, N dimensions)");
  }
}

// The header alone, as the launcher checks it before a job starts: dims of plain and gzipped files,
// a foreign element type named, a truncated header, and a plain file's size against its header.
TEST_F(IdxTest, DimsFromTheHeaderAlone) {
  for (bool gz : {false, true}) {
    const std::string path = write(gz ? "d.gz" : "d", idx_bytes({2, 3, 4}, iota_bytes(24)), gz);
    EXPECT_EQ(read_idx_dims(path), (std::vector<int64_t>{2, 3, 4}));
  }
  auto error = [](const std::string& path) {
    try {
      read_idx_dims(path);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  Bytes floats = idx_bytes({2}, Bytes(8));
  floats[2] = 0x0D;
  const std::string f = write("f", floats, false);
  EXPECT_EQ(error(f), f + ": IDX magic 0x00000d01 says the file holds 32-bit float values; expected 0x0000080N "
                          "(unsigned bytes, N dimensions)");
  const Bytes header = idx_bytes({20, 28, 28}, {});
  const std::string h = write("h", Bytes(header.begin(), header.begin() + 9), false);
  EXPECT_EQ(error(h), h + ": truncated: expected 16 bytes of header, got 9");
  const std::string t = write("t", idx_bytes({2, 3, 4}, iota_bytes(20)), false);
  EXPECT_EQ(error(t), t + ": truncated: expected 24 bytes of data, got 20");
  const std::string l = write("l", idx_bytes({2, 3, 4}, iota_bytes(25)), false);
  EXPECT_EQ(error(l), l + ": more data than the 24 bytes its header describes");
}

TEST_F(IdxTest, TruncatedDataNamesPathAndCounts) {
  for (bool gz : {false, true}) {
    const std::string path = write(gz ? "t.gz" : "t", idx_bytes({2, 3, 4}, iota_bytes(20)), gz);
    EXPECT_EQ(error_of(path), path + ": truncated: expected 24 bytes of data, got 20");
  }
  const std::string header = write("h", {0, 0, 8, 3, 0, 0}, false);
  EXPECT_EQ(error_of(header), header + ": truncated: expected 16 bytes of header, got 6");
}

// A gzip stream cut short mid-data reads as truncation, not as a generic read error.
TEST_F(IdxTest, CutGzipStreamIsTruncation) {
  Bytes data(20000);
  uint32_t s = 1;
  for (auto& x : data) x = static_cast<uint8_t>((s = s * 1664525u + 1013904223u) >> 24);  // incompressible
  const std::string full = write("c.gz", idx_bytes({20000}, data), true);
  fs::resize_file(full, fs::file_size(full) / 2);
  const std::string msg = error_of(full);
  EXPECT_EQ(msg.rfind(full + ": truncated: expected 20000 bytes of data, got ", 0), 0u) << msg;
}

TEST_F(IdxTest, MissingFileNamesPath) {
  const std::string path = (dir_ / "nope.gz").string();
  EXPECT_EQ(error_of(path).rfind("cannot open " + path, 0), 0u);
}

TEST_F(IdxTest, TrailingDataIsAnError) {
  const std::string path = write("x", idx_bytes({3}, {1, 2, 3, 4}), false);
  EXPECT_EQ(error_of(path), path + ": more data than the 3 bytes its header describes");
}

TEST_F(IdxTest, MakeDatasetNormalisesAndChecksLabels) {
  IdxArray images{{2, 2, 2}, {0, 255, 51, 102, 0, 0, 0, 0}};
  IdxArray labels{{2}, {3, 9}};
  Dataset ds = make_dataset(images, labels, 0.5f, 0.25f, "what");
  EXPECT_EQ(ds.images(0, 2).shape(), (Shape{2, 1, 2, 2}));
  EXPECT_EQ(ds.labels, (std::vector<int32_t>{3, 9}));
  EXPECT_EQ(ds.size(), 2);
  Tensor x = ds.images(0, 2);
  for (int i = 0; i < 8; ++i) EXPECT_FLOAT_EQ(x[i], (images.data[i] / 255.f - 0.5f) / 0.25f) << i;

  auto msg = [&](const IdxArray& im, const IdxArray& lb) -> std::string {
    try {
      make_dataset(im, lb, 0.5f, 0.25f, "WHAT");
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  };
  EXPECT_EQ(msg(images, {{3}, {0, 1, 2}}), "WHAT: 2 images but 3 labels");
  EXPECT_EQ(msg(images, {{2}, {0, 10}}), "WHAT: label 10 at index 1 is out of range [0, 10)");
  EXPECT_EQ(msg({{8}, images.data}, labels), "WHAT: images have 1 dimensions; expected 3 (N, H, W)");
}

TEST_F(IdxTest, LoadsPlainFilesFromDirAndNamesMissingOnes) {
  write("t10k-images-idx3-ubyte", idx_bytes({3, 28, 28}, iota_bytes(3 * 28 * 28)), false);
  write("t10k-labels-idx1-ubyte", idx_bytes({3}, {1, 2, 3}), false);
  Dataset ds = load_fashion_mnist(dir_.string(), /*train=*/false);
  EXPECT_EQ(ds.images(0, 3).shape(), (Shape{3, 1, 28, 28}));
  EXPECT_EQ(ds.labels, (std::vector<int32_t>{1, 2, 3}));
  try {
    load_fashion_mnist(dir_.string(), /*train=*/true);
    ADD_FAILURE() << "no error for a missing train set";
  } catch (const Error& e) {
    const std::string plain = (dir_ / "train-images-idx3-ubyte").string();
    EXPECT_EQ(std::string(e.what()), "cannot open " + plain + ".gz or " + plain);
  }
}

TEST(FashionMnist, LoadsRealFiles) {
  if (!fs::exists(LOCKSTEP_DATA_DIR)) GTEST_SKIP() << "no data set at " << LOCKSTEP_DATA_DIR;
  Dataset train = load_fashion_mnist(LOCKSTEP_DATA_DIR, true);
  Dataset test = load_fashion_mnist(LOCKSTEP_DATA_DIR, false);
  EXPECT_EQ(train.images(0, 60000).shape(), (Shape{60000, 1, 28, 28}));
  EXPECT_EQ(test.images(0, 10000).shape(), (Shape{10000, 1, 28, 28}));
  EXPECT_EQ(train.size(), 60000);
  EXPECT_EQ(test.size(), 10000);
  for (const Dataset* ds : {&train, &test}) {
    std::vector<int64_t> per_class(kNumClasses, 0);
    for (int32_t y : ds->labels) {
      ASSERT_GE(y, 0);
      ASSERT_LT(y, kNumClasses);
      ++per_class[y];
    }
    for (int64_t c : per_class) EXPECT_EQ(c, ds->size() / kNumClasses);  // both splits are balanced
  }
  // The default mean and std are the train set's own, so normalised pixels have mean ~0, std ~1.
  double sum = 0, sq = 0;
  const Tensor all = train.images(0, train.size());
  for (float x : all.span()) {
    sum += x;
    sq += double(x) * x;
  }
  const double n = double(all.numel()), mean = sum / n;
  EXPECT_NEAR(mean, 0.0, 0.01);
  EXPECT_NEAR(std::sqrt(sq / n - mean * mean), 1.0, 0.01);
}

}  // namespace
}  // namespace lockstep
