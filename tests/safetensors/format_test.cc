// The safetensors format (runtime/safetensors/safetensors.h): a round trip, and every rule the
// format states refused on read with one line naming the file, the key and the value.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "runtime/check.h"
#include "runtime/safetensors/safetensors.h"
#include "tests/checkpoint/checkpoint_test_util.h"

namespace lockstep::safetensors {
namespace {

constexpr const char* kFile = "w.safetensors";

std::string le64(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return s;
}

// A file with this header text (unpadded) and `data` bytes after it.
std::string raw(const std::string& header, const std::string& data) { return le64(header.size()) + header + data; }

// The error decode gives, or "" when it accepts the bytes.
std::string error_of(const std::string& bytes) {
  try {
    decode(bytes, kFile);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

void expect_one_line(const std::string& msg, std::initializer_list<const char*> parts) {
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  EXPECT_EQ(msg.rfind(kFile, 0), 0u) << "names the file first: " << msg;
  EXPECT_EQ(msg.find(".cc:"), std::string::npos) << "no source path: " << msg;
  for (const char* p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "\"" << p << "\" not in: " << msg;
}

File two_tensors() {
  File f;
  const float w[6] = {1.5f, -2.f, 0.f, 3.25f, -0.f, 1e-30f};
  const int64_t count = 123456789012;
  f.tensors.push_back({"fc.weight", "F32", {2, 3}, std::string(reinterpret_cast<const char*>(w), sizeof w)});
  f.tensors.push_back({"bn.num_batches_tracked", "I64", {}, std::string(reinterpret_cast<const char*>(&count), 8)});
  f.metadata["format"] = "pt";
  return f;
}

TEST(SafetensorsFormat, RoundTripKeepsNamesDtypesShapesBytesAndMetadata) {
  const File f = two_tensors();
  const std::string bytes = encode(f, kFile);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u) << "the header is padded so the data starts 8-byte aligned";
  EXPECT_EQ(bytes.size(), 8 + n + 24 + 8);  // 6 floats, 1 int64
  const File g = decode(bytes, kFile);
  ASSERT_EQ(g.tensors.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(g.tensors[i].name, f.tensors[i].name);
    EXPECT_EQ(g.tensors[i].dtype, f.tensors[i].dtype);
    EXPECT_EQ(g.tensors[i].shape, f.tensors[i].shape);
    EXPECT_EQ(g.tensors[i].bytes, f.tensors[i].bytes);
  }
  EXPECT_EQ(g.metadata, f.metadata);
}

// A header as the reference writer would make it (sorted keys, offsets in another order than the
// keys) reads, and tensors come back in data order.
TEST(SafetensorsFormat, ReadsAHeaderWhoseKeysAreNotInDataOrder) {
  const std::string h = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},)"
                        R"("b":{"dtype":"I64","shape":[],"data_offsets":[0,8]}})";
  const File f = decode(raw(h + "   ", std::string(12, '\x01')), kFile);
  ASSERT_EQ(f.tensors.size(), 2u);
  EXPECT_EQ(f.tensors[0].name, "b");
  EXPECT_EQ(f.tensors[1].name, "a");
}

TEST(SafetensorsFormat, EmptyTensorsAndAnEmptyFileAreValid) {
  const std::string h = R"({"e":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]}})";
  EXPECT_EQ(error_of(raw(h, "")), "");
  EXPECT_EQ(error_of(raw("{}", "")), "");
}

TEST(SafetensorsBadInput, TruncatedBeforeTheHeaderSize) {
  expect_one_line(error_of(std::string("\x10\x00\x00", 3)), {"truncated", "3 bytes"});
}

TEST(SafetensorsBadInput, TruncatedData) {
  std::string bytes = encode(two_tensors(), kFile);
  bytes.resize(bytes.size() - 3);
  expect_one_line(error_of(bytes), {"\"bn.num_batches_tracked\"", "data_offsets [24,32]", "run past the end", "29 bytes"});
}

TEST(SafetensorsBadInput, HeaderSizePastTheEndOfTheFile) {
  expect_one_line(error_of(le64(1000) + "{}"), {"header size 1000", "past the end of the file", "10 bytes"});
}

TEST(SafetensorsBadInput, HeaderSizeAboveTheFormatsLimit) {
  expect_one_line(error_of(le64(uint64_t{1} << 40) + "{}"), {"header size 1099511627776", "limit", "100000000"});
}

TEST(SafetensorsBadInput, OverlappingOffsets) {
  const std::string h = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                        R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})";
  expect_one_line(error_of(raw(h, std::string(12, '\0'))), {"key \"b\"", "[4, 12]", "overlap key \"a\""});
}

TEST(SafetensorsBadInput, AHoleInTheData) {
  const std::string h = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})";
  expect_one_line(error_of(raw(h, std::string(8, '\0'))), {"key \"a\"", "[0, 4)", "hole"});
}

TEST(SafetensorsBadInput, BytesAfterTheLastTensor) {
  const std::string h = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})";
  expect_one_line(error_of(raw(h, std::string(6, '\0'))), {"cover 4 bytes", "holds 6"});
}

TEST(SafetensorsBadInput, UnknownDtype) {
  const std::string h = R"({"a":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}})";
  expect_one_line(error_of(raw(h, std::string(4, '\0'))), {"key \"a\"", "unknown dtype \"F33\""});
}

TEST(SafetensorsBadInput, DtypeSizeDoesNotMatchTheShape) {
  const std::string h = R"({"a":{"dtype":"F64","shape":[2,2],"data_offsets":[0,16]}})";
  expect_one_line(error_of(raw(h, std::string(16, '\0'))), {"key \"a\"", "hold 16 bytes", "F64 shape [2, 2] needs 32"});
}

TEST(SafetensorsBadInput, ShapeWhoseByteCountOverflows) {
  const std::string h = R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})";
  expect_one_line(error_of(raw(h, std::string(4, '\0'))), {"key \"a\"", "more than 2^63"});
}

TEST(SafetensorsBadInput, NegativeShapeAndBadOffsets) {
  expect_one_line(error_of(raw(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", std::string(4, '\0'))),
                  {"key \"a\"", "shape [-1]", "-1, not a size"});
  expect_one_line(error_of(raw(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4]}})", std::string(4, '\0'))),
                  {"key \"a\"", "data_offsets [4]", "not [begin, end]"});
  expect_one_line(error_of(raw(R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[4,0]}})", std::string(4, '\0'))),
                  {"key \"a\"", "end before begin"});
}

TEST(SafetensorsBadInput, InvalidJson) {
  expect_one_line(error_of(raw(R"({"a": {"dtype": "F32",)", "")), {"not valid JSON"});
  EXPECT_EQ(error_of(raw(R"({"a": {"dtype": "F32",)", "")).find("json.exception"), std::string::npos);
}

TEST(SafetensorsBadInput, HeaderNotAnObject) {
  expect_one_line(error_of(raw("[1, 2]", "")), {"does not start with '{'"});
}

TEST(SafetensorsBadInput, DuplicateKey) {
  const std::string h = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                        R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})";
  expect_one_line(error_of(raw(h, std::string(8, '\0'))), {"key \"a\"", "twice"});
}

TEST(SafetensorsBadInput, MetadataValuesMustBeStrings) {
  expect_one_line(error_of(raw(R"({"__metadata__":{"step":3}})", "")), {"__metadata__", "\"step\"", "not a string"});
}

TEST(SafetensorsBadInput, MissingField) {
  expect_one_line(error_of(raw(R"({"a":{"dtype":"F32","shape":[1]}})", "")), {"key \"a\"", "data_offsets"});
}

TEST(SafetensorsFile, WriteIsAtomicAndReadNamesAMissingFile) {
  testing::ScratchDir dir;
  const std::string path = dir.path() + "/m.safetensors";
  write_file(path, two_tensors());
  write_file(path, two_tensors());  // over an existing file
  EXPECT_EQ(read_file(path).tensors.size(), 2u);
  int entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.path())) ++entries;
  EXPECT_EQ(entries, 1) << "no temporary file is left";
  try {
    read_file(dir.path() + "/none.safetensors");
    FAIL() << "read a missing file";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("none.safetensors: no such file"), std::string::npos) << e.what();
  }
  try {
    write_file(dir.path() + "/no/such/dir/m.safetensors", two_tensors());
    FAIL() << "wrote into a missing directory";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no/such/dir/m.safetensors"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("no such directory: "), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lockstep::safetensors
