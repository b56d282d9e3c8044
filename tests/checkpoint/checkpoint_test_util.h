// Helpers for the checkpoint tests: a scratch run directory, random checkpoints, raw file bytes,
// and a bit-exact comparison of two checkpoints.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>

#include "runtime/checkpoint/checkpoint.h"

namespace lockstep::testing {

// A fresh directory under the system temp dir, removed with everything in it at scope exit.
class ScratchDir {
 public:
  ScratchDir() {
    static int counter = 0;
    path_ = (std::filesystem::temp_directory_path() /
             ("lockstep-ckpt-" + std::to_string(::getpid()) + "-" + std::to_string(counter++)))
                .string();
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline Tensor random_tensor(const Shape& shape, std::mt19937& rng) {
  Tensor t = Tensor::empty(shape);
  // Raw random bits (NaN payloads, denormals, -0 included) so "bit-identical" means bits.
  for (int64_t i = 0; i < t.numel(); ++i) {
    const uint32_t bits = rng();
    std::memcpy(&t[i], &bits, sizeof bits);
  }
  return t;
}

// A checkpoint at `step` with tensors of `elems` floats each (plus small and empty ones).
inline Checkpoint random_checkpoint(uint64_t step, uint32_t seed, int64_t elems = 1000) {
  std::mt19937 rng(seed);
  Checkpoint c;
  c.state.set_step(step);
  c.state.set_epoch(static_cast<int64_t>(rng() % 100));
  c.state.set_epoch_step(static_cast<int64_t>(rng() % 1000));
  c.state.set_job_hash("hash-" + std::to_string(rng()));
  c.state.set_world_size(4);
  c.state.set_optimizer_steps(static_cast<int64_t>(step));
  c.state.set_lr(0.05f * static_cast<float>(rng() % 7 + 1));
  c.state.set_phase_id(rng());
  for (int r = 0; r < 2; ++r) {
    proto::RngRecord* rec = c.state.add_rng();
    rec->set_rank(r);
    rec->set_consumer("dropout.6");
    rec->set_seed(rng());
    rec->set_key_rank(static_cast<uint32_t>(r));
    rec->set_stream(rng() % 4);
    rec->set_step(step * 10 + static_cast<uint64_t>(r));
  }
  c.model = {{"0.weight", random_tensor({elems}, rng)},
             {"0.bias", random_tensor({3, 5}, rng)},
             {"1.running_mean", random_tensor({0}, rng)}};
  c.optimizer = {{"0.momentum_buffer", random_tensor({elems}, rng)},
                 {"1.momentum_buffer", random_tensor({2, 3, 4}, rng)}};
  return c;
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

// Every file of a directory, by name, with its bytes.
inline std::map<std::string, std::string> dir_contents(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    files[e.path().filename().string()] = read_bytes(e.path().string());
  return files;
}

inline void expect_same_tensors(const std::vector<NamedTensor>& a, const std::vector<NamedTensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].name, b[i].name);
    ASSERT_EQ(a[i].tensor.shape(), b[i].tensor.shape()) << a[i].name;
    const size_t bytes = static_cast<size_t>(a[i].tensor.numel()) * sizeof(float);
    EXPECT_EQ(0, bytes ? std::memcmp(a[i].tensor.data(), b[i].tensor.data(), bytes) : 0) << a[i].name;
  }
}

inline void expect_same(const Checkpoint& a, const Checkpoint& b) {
  EXPECT_EQ(a.state.SerializeAsString(), b.state.SerializeAsString());
  EXPECT_EQ(a.state.DebugString(), b.state.DebugString());
  expect_same_tensors(a.model, b.model);
  expect_same_tensors(a.optimizer, b.optimizer);
}

inline std::string ckpt_dir(const std::string& run_dir, uint64_t step) {
  char name[32];
  std::snprintf(name, sizeof name, "ckpt-%09llu", static_cast<unsigned long long>(step));
  return run_dir + "/checkpoints/" + name;
}

}  // namespace lockstep::testing
