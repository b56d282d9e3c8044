// Data sets with one fault each (and a good one to start from), shared by the `lockstep train`
// tests and the `lockstep launch` rejection tests: every fault must be refused before any data is
// loaded (and, for launch, before the run directory exists) with one line naming the file or field.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/test_util.h"

namespace lockstep::testing {

// An IDX file: magic (0x0000080N unless given), big-endian dims, then `data` as it is.
inline std::string idx_with(const std::vector<uint32_t>& dims, const std::string& data, uint32_t magic = 0) {
  std::string out;
  auto be32 = [&](uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>((v >> s) & 0xff));
  };
  be32(magic ? magic : 0x0800u + static_cast<uint32_t>(dims.size()));
  for (uint32_t d : dims) be32(d);
  return out + data;
}

inline void put_file(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary | std::ios::trunc) << bytes;
}

// 20 train and 20 test samples of 28x28, labels 0..9.
inline void write_good_data(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  for (const char* split : {"train", "t10k"}) {
    put_file(dir / (std::string(split) + "-images-idx3-ubyte"), idx_bytes({20, 28, 28}, 20 * 784));
    put_file(dir / (std::string(split) + "-labels-idx1-ubyte"), idx_bytes({20}, 20));
  }
}

// The file gzipped in place (path.gz; the plain file removed), by gzip(1).
inline std::filesystem::path gzipped(const std::filesystem::path& plain) {
  const int st = std::system(("gzip -f -n " + plain.string()).c_str());
  if (st != 0) throw std::runtime_error("gzip failed on " + plain.string());
  return plain.string() + ".gz";
}

struct DataFault {
  std::string name;
  std::function<void(const std::filesystem::path& data)> damage;  // applied to a good data set
  std::string model = "reference: \"fmnist-mlp\"";                // the job's model block
  std::string expect;                                               // in the one-line error
  bool data_is_file = false;  // data.dir names a file instead of the directory
};

inline std::vector<DataFault> data_faults() {
  using P = std::filesystem::path;
  return {
      {"label_200",
       [](const P& d) {
         std::string labels = idx_bytes({20}, 20).substr(8);
         labels[7] = static_cast<char>(200);
         put_file(d / "train-labels-idx1-ubyte", idx_with({20}, labels));
       },
       "reference: \"fmnist-mlp\"", "train-labels-idx1-ubyte: label 200 at index 7 is out of range [0, 10)"},
      {"label_beyond_model_outputs",
       [](const P&) {},  // labels 0..9, but the model scores 5 classes
       "input_shape: [784] layers { linear { in_features: 784 out_features: 5 } }",
       "label 9 at index 7 is out of range [0, 5) (the model has 5 outputs)"},
      {"counts_differ",
       [](const P& d) { put_file(d / "t10k-labels-idx1-ubyte", idx_bytes({19}, 19)); },
       "reference: \"fmnist-mlp\"", "20 images but 19 labels"},
      {"truncated_header",
       [](const P& d) { put_file(d / "train-images-idx3-ubyte", idx_bytes({20, 28, 28}, 0).substr(0, 9)); },
       "reference: \"fmnist-mlp\"", "train-images-idx3-ubyte: truncated: expected 16 bytes of header, got 9"},
      {"float_idx",
       [](const P& d) {
         put_file(d / "train-images-idx3-ubyte", idx_with({20, 28, 28}, std::string(4 * 20 * 784, '\0'), 0x0D03));
       },
       "reference: \"fmnist-mlp\"", "train-images-idx3-ubyte: IDX magic 0x00000d03 says the file holds 32-bit float"},
      {"labels_2d",
       [](const P& d) { put_file(d / "train-labels-idx1-ubyte", idx_bytes({20, 1}, 20)); },
       "reference: \"fmnist-mlp\"", "train-labels-idx1-ubyte: labels have 2 dimensions; expected 1 (N)"},
      {"data_dir_is_a_file", [](const P&) {}, "reference: \"fmnist-mlp\"", "is not a directory", true},
      {"batch_larger_than_data_set",
       [](const P& d) {
         put_file(d / "train-images-idx3-ubyte", idx_bytes({2, 28, 28}, 2 * 784));
         put_file(d / "train-labels-idx1-ubyte", idx_bytes({2}, 2));
       },
       "reference: \"fmnist-mlp\"", "batch_size: global batch 4 is larger than the training set (2 samples"},
      {"images_14x14",
       [](const P& d) { put_file(d / "train-images-idx3-ubyte", idx_bytes({20, 14, 14}, 20 * 196)); },
       "reference: \"fmnist-cnn\"", "holds 14x14 images, but model fmnist-cnn takes [1, 28, 28]"},
      {"input_shape_not_the_images",
       [](const P&) {},
       "input_shape: [1, 32, 32] layers { flatten {} } layers { linear { in_features: 1024 out_features: 10 } }",
       "model.input_shape: [1, 32, 32] does not fit the data"},
      {"no_samples",
       [](const P& d) {
         put_file(d / "train-images-idx3-ubyte", idx_bytes({0, 28, 28}, 0));
         put_file(d / "train-labels-idx1-ubyte", idx_bytes({0}, 0));
       },
       "reference: \"fmnist-mlp\"", "train-images-idx3-ubyte: holds no samples"},
      // A gzipped file's header is fine, its deflate stream is not: only inflating it all tells.
      {"images_gz_truncated",
       [](const P& d) {
         const P gz = gzipped(d / "train-images-idx3-ubyte");
         std::filesystem::resize_file(gz, std::filesystem::file_size(gz) - 12);
       },
       "reference: \"fmnist-mlp\"", "train-images-idx3-ubyte.gz: truncated"},
      {"images_gz_corrupt",
       [](const P& d) {
         const P gz = gzipped(d / "train-images-idx3-ubyte");
         std::fstream f(gz, std::ios::in | std::ios::out | std::ios::binary);
         f.seekp(static_cast<std::streamoff>(std::filesystem::file_size(gz) / 2));
         f.write("\xff\xff\xff\xff", 4);
       },
       "reference: \"fmnist-mlp\"", "train-images-idx3-ubyte.gz: read error"},
  };
}

// A job of `model` on `data` (global batch 4, 1 epoch), metrics under `dir`.
inline std::string write_fault_job(const std::filesystem::path& dir, const std::string& model,
                                   const std::string& data) {
  const std::filesystem::path p = dir / "job.textproto";
  put_file(p, "name: \"data-fault\"\nmodel { " + model + " }\ndata { dir: \"" + data +
                  "\" }\noptimizer { lr: 0.05 sgd { momentum: 0.9 } }\nepochs: 1\nbatch_size: 4\nmetrics_file: \"" +
                  (dir / "m.jsonl").string() + "\"\n");
  return p.string();
}

}  // namespace lockstep::testing
