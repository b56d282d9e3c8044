// Tensor: a dense, contiguous float32 array with a shape, backed by 64-byte-aligned storage that
// copies share (like torch.Tensor views). Under grad mode a tensor made by an op or a layer also
// carries the autograd node that made it (grad_fn, runtime/autograd.h); a parameter's value carries
// the node that accumulates into its .grad. Gradients travel between nodes as contiguous values,
// so reshape keeps grad_fn: each node reads an incoming gradient in its own output's shape. kCUDA tensors hold device memory (runtime/device.h) and
// move with to(); the layers' kernels run on kCPU tensors. Live and peak storage bytes are counted so tests and
// benchmarks can measure what forward keeps for backward.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace lockstep {

class Node;

enum class Device { kCPU, kCUDA };

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& s);
int64_t shape_numel(const Shape& s);

class Tensor {
 public:
  Tensor() = default;
  static Tensor empty(Shape shape, Device device = Device::kCPU);  // contents undefined
  static Tensor zeros(Shape shape, Device device = Device::kCPU);
  static Tensor full(Shape shape, float value);
  static Tensor from(Shape shape, std::span<const float> values);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int64_t dim(int i) const;  // negative i counts from the end, as in PyTorch
  int ndim() const { return static_cast<int>(shape_.size()); }
  int64_t numel() const { return numel_; }
  Device device() const { return device_; }

  float* data() { return storage_.get(); }
  const float* data() const { return storage_.get(); }
  std::span<float> span() { return {data(), static_cast<size_t>(numel_)}; }
  std::span<const float> span() const { return {data(), static_cast<size_t>(numel_)}; }
  float& operator[](int64_t i) { return data()[i]; }
  float operator[](int64_t i) const { return data()[i]; }

  Tensor reshape(Shape shape) const;  // shares storage; one dim may be -1
  // numel(shape) elements of base's storage from `offset` on, shared (keeps base alive): the
  // gradient reducer makes parameter gradients such views of its bucket buffers, so all-reducing
  // a bucket reduces the gradients in place, with no copy in or out.
  static Tensor view(const Tensor& base, int64_t offset, Shape shape);
  Tensor to(Device device) const;     // a copy on `device` (this tensor itself if already there)
  Tensor clone() const;  // a copy out of the graph (torch: x.detach().clone())
  void fill(float value);
  void copy_from(const Tensor& other);  // same numel required

  // Autograd (runtime/autograd.h). requires_grad: made under grad mode by a recorded op or layer
  // from something that requires grad, or a parameter's value.
  bool requires_grad() const { return grad_fn_ != nullptr; }
  const std::shared_ptr<Node>& grad_fn() const { return grad_fn_; }
  void set_grad_fn(std::shared_ptr<Node> fn) { grad_fn_ = std::move(fn); }
  Tensor detach() const;  // the same storage, out of the graph
  // Reverse-mode pass from this tensor: `grad` is dL/d(this), default 1 for a one-element tensor
  // (a scalar loss). See lockstep::backward.
  void backward() const;
  void backward(const Tensor& grad) const;

 private:
  std::shared_ptr<float[]> storage_;
  Shape shape_;
  int64_t numel_ = 0;
  Device device_ = Device::kCPU;
  std::shared_ptr<Node> grad_fn_;
};

// Storage accounting, process-wide because it mirrors the allocator (like a CUDA caching allocator's
// memory_stats); it holds no training state.
struct MemoryStats {
  int64_t live_bytes;
  int64_t peak_bytes;
};
MemoryStats memory_stats();
void reset_peak_memory();  // peak := live

}  // namespace lockstep
