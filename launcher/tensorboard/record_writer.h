// TFRecord files: each record is framed as
//   uint64 length (little-endian) | uint32 masked CRC-32C of those 8 bytes | data | uint32 masked CRC-32C of data
// (tensorflow/core/lib/io/record_writer.h; the CRCs little-endian too). TensorBoard's event files
// are TFRecord files of serialized tensorboard.Event protos.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace lockstep::tensorboard {

// The framed bytes of one record: 12 + data.size() + 4 bytes.
std::string frame_record(std::string_view data);

class RecordWriter {
 public:
  // Creates path, which must not exist yet (each writer owns a file of its own); an Error naming
  // the path and the reason when it cannot.
  explicit RecordWriter(const std::string& path);
  ~RecordWriter();
  RecordWriter(const RecordWriter&) = delete;
  RecordWriter& operator=(const RecordWriter&) = delete;

  // Appends one framed record and flushes it to the OS, so a crash loses at most the record being
  // written (a reader stops at a torn last record). An Error naming the path when the write fails.
  void write(std::string_view data);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
};

}  // namespace lockstep::tensorboard
