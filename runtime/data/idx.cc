// read_idx through zlib's gzread, which passes plain files through unchanged, so one path reads
// both forms. Data is read in chunks so a corrupt header cannot demand a huge allocation up front.
#include "runtime/data/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iomanip>
#include <sstream>

#include "runtime/check.h"

namespace lockstep {
namespace {

constexpr int64_t kChunk = int64_t{1} << 24;  // 16 MiB

class GzFile {
 public:
  explicit GzFile(const std::string& path) : f_(gzopen(path.c_str(), "rb")) {
    LOCKSTEP_FAIL_IF(f_ == nullptr) << "cannot open " << path << ": "
                                    << (errno ? std::strerror(errno) : "out of memory");
    gzbuffer(f_, 1 << 17);
  }
  ~GzFile() { gzclose(f_); }
  bool gzipped() const { return gzdirect(f_) == 0; }  // after the first read
  GzFile(const GzFile&) = delete;
  GzFile& operator=(const GzFile&) = delete;

  // Reads until n bytes or the end of the file and returns the count. A gzip stream cut short
  // (Z_BUF_ERROR) counts as the end, so the caller reports it as truncation.
  int64_t read(uint8_t* dst, int64_t n, const std::string& path) {
    int64_t got = 0;
    while (got < n) {
      int r = gzread(f_, dst + got, static_cast<unsigned>(std::min(n - got, kChunk)));
      if (r > 0) {
        got += r;
        continue;
      }
      if (r < 0) {
        int err = 0;
        const char* msg = gzerror(f_, &err);
        LOCKSTEP_FAIL_IF(err != Z_BUF_ERROR) << path << ": read error: "
                                             << (err == Z_ERRNO ? std::strerror(errno) : msg);
      }
      break;
    }
    return got;
  }

 private:
  gzFile f_;
};

uint32_t big_endian(const uint8_t* b) {
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
}

// The element types of the IDX format (third byte of the magic); nullptr for an unknown code.
const char* type_name(uint32_t code) {
  switch (code) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "16-bit integer";
    case 0x0C: return "32-bit integer";
    case 0x0D: return "32-bit float";
    case 0x0E: return "64-bit float";
    default: return nullptr;
  }
}

// Reads the magic and dims; f is left at the first data byte. `expected` = product of the dims.
std::vector<int64_t> read_header(GzFile& f, const std::string& path, int64_t& expected) {
  uint8_t head[4];
  int64_t got = f.read(head, 4, path);
  LOCKSTEP_FAIL_IF(got < 4) << path << ": truncated: expected 4 bytes of header, got " << got;
  const uint32_t magic = big_endian(head);
  const int ndim = static_cast<int>(magic & 0xff);
  const uint32_t type = (magic >> 8) & 0xff;
  LOCKSTEP_FAIL_IF((magic & 0xffff0000u) == 0 && type != 0x08 && type_name(type) != nullptr)
      << path << ": IDX magic 0x" << std::hex << std::setw(8) << std::setfill('0') << magic << " says the file holds "
      << type_name(type) << " values; expected 0x0000080N (unsigned bytes, N dimensions)";
  LOCKSTEP_FAIL_IF((magic & 0xffffff00u) != 0x800u || ndim < 1 || ndim > 15)
      << path << ": bad IDX magic 0x" << std::hex << std::setw(8) << std::setfill('0') << magic
      << "; expected 0x0000080N (unsigned bytes, N dimensions)";

  std::vector<uint8_t> raw(4 * ndim);
  got = f.read(raw.data(), 4 * ndim, path);
  LOCKSTEP_FAIL_IF(got < 4 * ndim) << path << ": truncated: expected " << 4 + 4 * ndim
                                   << " bytes of header, got " << 4 + got;
  std::vector<int64_t> dims;
  expected = 1;
  for (int i = 0; i < ndim; ++i) {
    dims.push_back(big_endian(&raw[4 * i]));
    LOCKSTEP_FAIL_IF(__builtin_mul_overflow(expected, dims.back(), &expected))
        << path << ": IDX dims overflow a 64-bit size";
  }
  return dims;
}

}  // namespace

std::vector<int64_t> read_idx_dims(const std::string& path) {
  errno = 0;
  int64_t expected = 0;
  std::vector<int64_t> dims;
  {
    GzFile f(path);
    dims = read_header(f, path, expected);
    if (f.gzipped()) {
      // A gzipped file's length, and whether its stream is whole, show only by inflating it all
      // (a fraction of a second for Fashion-MNIST); the bytes are not kept.
      std::vector<uint8_t> sink(static_cast<size_t>(kChunk));
      int64_t got = 0;
      for (int64_t r; (r = f.read(sink.data(), kChunk, path)) > 0;) got += r;
      LOCKSTEP_FAIL_IF(got < expected) << path << ": truncated: expected " << expected << " bytes of data, got " << got;
      LOCKSTEP_FAIL_IF(got > expected) << path << ": more data than the " << expected << " bytes its header describes";
      return dims;
    }
  }
  // A plain file's size is known without reading it.
  std::error_code ec;
  const uintmax_t size = std::filesystem::file_size(path, ec);
  uint8_t magic[2] = {0, 0};
  if (FILE* raw = std::fopen(path.c_str(), "rb")) {
    const size_t n = std::fread(magic, 1, 2, raw);
    std::fclose(raw);
    if (n < 2) magic[0] = 0;
  }
  const bool gzipped = magic[0] == 0x1f && magic[1] == 0x8b;
  if (!ec && !gzipped) {
    const int64_t header = 4 + 4 * static_cast<int64_t>(dims.size());
    const int64_t data = static_cast<int64_t>(size) - header;
    LOCKSTEP_FAIL_IF(data < expected) << path << ": truncated: expected " << expected << " bytes of data, got " << data;
    LOCKSTEP_FAIL_IF(data > expected) << path << ": more data than the " << expected << " bytes its header describes";
  }
  return dims;
}

IdxArray read_idx(const std::string& path) {
  errno = 0;
  GzFile f(path);
  IdxArray out;
  int64_t expected = 0, got = 0;
  out.dims = read_header(f, path, expected);

  got = 0;
  while (got < expected) {  // grow by chunks: only bytes that exist get allocated
    const int64_t want = std::min(expected - got, kChunk);
    out.data.resize(static_cast<size_t>(got + want));
    const int64_t r = f.read(out.data.data() + got, want, path);
    got += r;
    if (r < want) break;
  }
  LOCKSTEP_FAIL_IF(got < expected) << path << ": truncated: expected " << expected
                                   << " bytes of data, got " << got;
  uint8_t extra;
  LOCKSTEP_FAIL_IF(f.read(&extra, 1, path) != 0)
      << path << ": more data than the " << expected << " bytes its header describes";
  return out;
}

}  // namespace lockstep
