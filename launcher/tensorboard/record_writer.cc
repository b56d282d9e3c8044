// TFRecord framing and an append-only, flushed-per-record file.
#include "launcher/tensorboard/record_writer.h"

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "launcher/tensorboard/crc32c.h"
#include "runtime/check.h"

namespace lockstep::tensorboard {
namespace {

void put_le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFFu));
}

}  // namespace

std::string frame_record(std::string_view data) {
  std::string out;
  out.reserve(16 + data.size());
  put_le(out, data.size(), 8);
  put_le(out, masked_crc32c(crc32c(out)), 4);
  out.append(data);
  put_le(out, masked_crc32c(crc32c(data)), 4);
  return out;
}

RecordWriter::RecordWriter(const std::string& path) : path_(path) {
  file_ = std::fopen(path.c_str(), "wbx");  // x: never append to, or truncate, another writer's file
  LOCKSTEP_FAIL_IF(!file_) << "cannot create TensorBoard events file " << path << ": " << std::strerror(errno);
}

RecordWriter::~RecordWriter() {
  if (file_) std::fclose(file_);
}

void RecordWriter::write(std::string_view data) {
  const std::string framed = frame_record(data);
  const bool ok = std::fwrite(framed.data(), 1, framed.size(), file_) == framed.size() && std::fflush(file_) == 0;
  LOCKSTEP_FAIL_IF(!ok) << "cannot write TensorBoard events file " << path_ << ": " << std::strerror(errno);
}

}  // namespace lockstep::tensorboard
