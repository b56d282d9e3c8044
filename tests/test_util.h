// What several test suites share: running a shell command line with its output captured, writing
// synthetic IDX files (small data sets for whole-process tests), and seeded normal tensors.
#pragma once

#include <sys/wait.h>

#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "runtime/autograd.h"
#include "runtime/parameter.h"

namespace lockstep::testing {

// A contiguous tensor of `shape` filled with offset + scale * N(0, 1) draws of mt19937(seed), in
// storage order: the same values for the same arguments on every run.
inline Tensor randn(Shape shape, uint32_t seed, float scale = 1.f, float offset = 0.f) {
  Tensor t = Tensor::empty(std::move(shape));
  std::mt19937 gen(seed);
  std::normal_distribution<float> dist(0.f, 1.f);
  for (float& v : t.span()) v = offset + scale * dist(gen);
  return t;
}

struct CommandResult {
  int status = -1;     // exit status; 124 when a `timeout` ended it, -1 when killed by a signal
  std::string output;  // what the command line printed (add 2>&1 to it for stderr too)
};

// Runs `command_line` with /bin/sh (popen) and waits for it.
inline CommandResult capture(const std::string& command_line) {
  CommandResult r;
  FILE* p = ::popen(command_line.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t got;
  while ((got = std::fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, got);
  const int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// An IDX file of unsigned bytes: magic 0x0000080N (or `magic`), big-endian dims, then data_bytes
// bytes of a fixed pattern with a period of 10 inside each 784-byte image.
inline std::string idx_bytes(const std::vector<uint32_t>& dims, size_t data_bytes, uint32_t magic = 0) {
  std::string out;
  auto be32 = [&](uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>((v >> s) & 0xff));
  };
  be32(magic ? magic : 0x0800u + static_cast<uint32_t>(dims.size()));
  for (uint32_t d : dims) be32(d);
  for (size_t i = 0; i < data_bytes; ++i) out.push_back(static_cast<char>((i * 7 + i / 784) % 10));
  return out;
}

// An input that requires grad (torch's x.requires_grad_()): the gradient backward computes for it
// lands in grad().
class GradInput {
 public:
  explicit GradInput(const Tensor& x) {
    p_.value = x.clone();
    p_.grad = Tensor::zeros(x.shape());
    make_leaf(p_);
  }
  GradInput(const GradInput&) = delete;
  GradInput& operator=(const GradInput&) = delete;
  const Tensor& value() const { return p_.value; }
  const Tensor& grad() const { return p_.grad; }

 private:
  Parameter p_;
};

}  // namespace lockstep::testing
