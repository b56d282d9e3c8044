// Tensor storage and shape helpers.
#include "runtime/tensor.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <malloc.h>
#include <sstream>

#include "runtime/check.h"
#include "runtime/device.h"

namespace lockstep {
namespace {

constexpr size_t kAlign = 64;
std::atomic<int64_t> g_live{0};
std::atomic<int64_t> g_peak{0};

void note_alloc(int64_t bytes) {
  int64_t live = g_live.fetch_add(bytes) + bytes;
  int64_t peak = g_peak.load();
  while (live > peak && !g_peak.compare_exchange_weak(peak, live)) {
  }
}

// Activations of a training step are freed and reallocated every step. Keeping freed memory in
// the heap (rather than returning each large block to the kernel) saves a page fault per page
// per step.
const bool g_heap_tuned = [] {
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  return true;
}();

std::shared_ptr<float[]> allocate(const Shape& shape, int64_t n) {
  LOCKSTEP_FAIL_IF(static_cast<size_t>(n) > (SIZE_MAX - kAlign) / sizeof(float))
      << "out of memory: a tensor of shape " << shape_str(shape) << " is larger than the address space";
  size_t bytes = std::max<size_t>(kAlign, (static_cast<size_t>(n) * sizeof(float) + kAlign - 1) /
                                              kAlign * kAlign);
  auto* p = static_cast<float*>(std::aligned_alloc(kAlign, bytes));
  LOCKSTEP_FAIL_IF(p == nullptr) << "out of memory: cannot allocate " << bytes
                                 << " bytes for a tensor of shape " << shape_str(shape);
  note_alloc(static_cast<int64_t>(bytes));
  return std::shared_ptr<float[]>(p, [bytes](float* q) {
    g_live.fetch_sub(static_cast<int64_t>(bytes));
    std::free(q);
  });
}

// Per batch item b < n: dst (cols, rows) = src (rows, cols)^T, in tiles that stay in cache.
// NCHW -> NHWC is rows = C, cols = H*W; NHWC -> NCHW the reverse.
void transpose_batch(const float* src, float* dst, int64_t n, int64_t rows, int64_t cols) {
  constexpr int64_t kTile = 32;
  for (int64_t b = 0; b < n; ++b) {
    const float* s = src + b * rows * cols;
    float* d = dst + b * rows * cols;
    for (int64_t r0 = 0; r0 < rows; r0 += kTile)
      for (int64_t c0 = 0; c0 < cols; c0 += kTile) {
        const int64_t r1 = std::min(rows, r0 + kTile), c1 = std::min(cols, c0 + kTile);
        for (int64_t r = r0; r < r1; ++r)
          for (int64_t c = c0; c < c1; ++c) d[c * rows + r] = s[r * cols + c];
      }
  }
}

}  // namespace

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << "(";
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << ")";
  return os.str();
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) {
    LOCKSTEP_CHECK(d >= 0) << "negative dimension in shape " << shape_str(s);
    LOCKSTEP_FAIL_IF(__builtin_mul_overflow(n, d, &n))
        << "shape " << shape_str(s) << " has more elements than 64-bit sizes hold";
  }
  return n;
}

Tensor Tensor::empty(Shape shape, Device device) {
  Tensor t;
  t.numel_ = shape_numel(shape);
  t.shape_ = std::move(shape);
  t.device_ = device;
  if (device == Device::kCPU) {
    t.storage_ = allocate(t.shape_, t.numel_);
  } else {
    void* p = cuda_alloc(std::max<size_t>(1, static_cast<size_t>(t.numel_) * sizeof(float)));
    t.storage_ = std::shared_ptr<float[]>(static_cast<float*>(p), [](float* q) { cuda_free(q); });
  }
  return t;
}

Tensor Tensor::empty(Shape shape, MemoryFormat format) {
  LOCKSTEP_CHECK(format == MemoryFormat::kContiguous || shape.size() == 4)
      << "channels_last needs a 4-D shape (N, C, H, W), got " << shape_str(shape);
  Tensor t = empty(std::move(shape));
  t.format_ = format;
  return t;
}

Tensor Tensor::zeros(Shape shape, MemoryFormat format) {
  Tensor t = empty(std::move(shape), format);
  t.fill(0.f);
  return t;
}

bool Tensor::is_contiguous(MemoryFormat format) const {
  if (format == format_) return true;
  return ndim() == 4 && (shape_[1] == 1 || shape_[2] * shape_[3] == 1);
}

Tensor Tensor::contiguous() const {
  if (format_ == MemoryFormat::kContiguous) return *this;
  Tensor t = *this;
  t.format_ = MemoryFormat::kContiguous;
  if (is_contiguous(MemoryFormat::kContiguous)) return t;  // C == 1 or H*W == 1: the same storage
  LOCKSTEP_CHECK(device_ == Device::kCPU) << "contiguous() of a channels_last tensor on CUDA";
  t.storage_ = allocate(shape_, numel_);
  transpose_batch(data(), t.data(), shape_[0], shape_[2] * shape_[3], shape_[1]);
  return t;
}

Tensor Tensor::to_channels_last() const {
  LOCKSTEP_CHECK(ndim() == 4) << "to_channels_last(): expected a 4-D tensor (N, C, H, W), got "
                              << shape_str(shape_);
  if (format_ == MemoryFormat::kChannelsLast) return *this;
  Tensor t = *this;
  t.format_ = MemoryFormat::kChannelsLast;
  if (is_contiguous(MemoryFormat::kChannelsLast)) return t;
  LOCKSTEP_CHECK(device_ == Device::kCPU) << "to_channels_last() of a tensor on CUDA";
  t.storage_ = allocate(shape_, numel_);
  transpose_batch(data(), t.data(), shape_[0], shape_[1], shape_[2] * shape_[3]);
  return t;
}

Tensor Tensor::to_format(MemoryFormat format) const {
  return format == MemoryFormat::kChannelsLast ? to_channels_last() : contiguous();
}

Tensor Tensor::to(Device device) const {
  if (device == device_) return *this;
  Tensor t = empty(shape_, device);
  t.format_ = format_;
  const size_t bytes = static_cast<size_t>(numel_) * sizeof(float);
  if (bytes == 0) return t;
  if (device == Device::kCUDA) {
    cuda_copy_to_device(t.data(), data(), bytes);
  } else {
    cuda_copy_to_host(t.data(), data(), bytes);
  }
  return t;
}

Tensor Tensor::zeros(Shape shape, Device device) {
  Tensor t = empty(std::move(shape), device);
  t.fill(0.f);
  return t;
}

Tensor Tensor::full(Shape shape, float value) {
  Tensor t = empty(std::move(shape));
  t.fill(value);
  return t;
}

Tensor Tensor::from(Shape shape, std::span<const float> values) {
  Tensor t = empty(std::move(shape));
  LOCKSTEP_CHECK(static_cast<int64_t>(values.size()) == t.numel_)
      << values.size() << " values for shape " << shape_str(t.shape_);
  std::copy(values.begin(), values.end(), t.data());
  return t;
}

int64_t Tensor::dim(int i) const {
  int n = ndim();
  int j = i < 0 ? i + n : i;
  LOCKSTEP_CHECK(j >= 0 && j < n) << "dim " << i << " of shape " << shape_str(shape_);
  return shape_[j];
}

Tensor Tensor::view(const Tensor& base, int64_t offset, Shape shape) {
  const int64_t n = shape_numel(shape);
  LOCKSTEP_CHECK(base.defined() && offset >= 0 && offset + n <= base.numel_)
      << "view of " << n << " elements at " << offset << " in a tensor of " << base.numel_;
  Tensor t;  // out of the graph: the reducer's bucket views of gradients
  t.storage_ = std::shared_ptr<float[]>(base.storage_, base.storage_.get() + offset);  // aliasing
  t.shape_ = std::move(shape);
  t.numel_ = n;
  t.device_ = base.device_;
  return t;
}

Tensor Tensor::reshape(Shape shape) const {
  int64_t known = 1;
  int infer = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      LOCKSTEP_CHECK(infer < 0) << "reshape " << shape_str(shape) << ": two -1 dims";
      infer = static_cast<int>(i);
    } else {
      known *= shape[i];
    }
  }
  if (infer >= 0) shape[infer] = known == 0 ? 0 : numel_ / known;
  LOCKSTEP_CHECK(shape_numel(shape) == numel_)
      << "cannot reshape " << shape_str(shape_) << " to " << shape_str(shape);
  if (format_ == MemoryFormat::kChannelsLast && shape == shape_) return *this;
  Tensor t = contiguous();
  t.shape_ = std::move(shape);
  return t;
}

Tensor Tensor::detach() const {
  Tensor t = *this;
  t.grad_fn_ = nullptr;
  return t;
}

Tensor Tensor::clone() const {
  if (device_ != Device::kCPU) return to(Device::kCPU).to(device_);
  Tensor t = empty(shape_, device_);
  t.format_ = format_;
  if (numel_) std::memcpy(t.data(), data(), static_cast<size_t>(numel_) * sizeof(float));
  return t;
}

void Tensor::fill(float value) {
  LOCKSTEP_CHECK(device_ == Device::kCPU) << "fill() on a device tensor; fill on the CPU and use to()";
  std::fill_n(data(), numel_, value);
}

void Tensor::copy_from(const Tensor& other) {
  LOCKSTEP_CHECK(device_ == Device::kCPU && other.device_ == Device::kCPU) << "copy_from() between CPU tensors only";
  LOCKSTEP_CHECK(other.numel_ == numel_)
      << "copy " << shape_str(other.shape_) << " into " << shape_str(shape_);
  if (other.format_ != format_ && other.shape_ == shape_ && ndim() == 4) {
    const Tensor src = other.to_format(format_);
    if (numel_) std::memcpy(data(), src.data(), static_cast<size_t>(numel_) * sizeof(float));
    return;
  }
  if (numel_) std::memcpy(data(), other.data(), static_cast<size_t>(numel_) * sizeof(float));
}

MemoryStats memory_stats() { return {g_live.load(), g_peak.load()}; }
void reset_peak_memory() { g_peak.store(g_live.load()); }

}  // namespace lockstep
