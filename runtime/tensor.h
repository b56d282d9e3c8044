// Tensor: a dense float32 array with a shape, backed by 64-byte-aligned storage that copies share
// (like torch.Tensor views). Under grad mode a tensor made by an op or a layer also carries the
// autograd node that made it (grad_fn, runtime/autograd.h); a parameter's value carries the node
// that accumulates into its .grad. Gradients travel between nodes as contiguous values, so reshape
// keeps grad_fn: each node reads an incoming gradient in its own output's shape.
//
// Note [memory format]: as torch.channels_last, a 4-D tensor's storage is either (N, C, H, W)
// (MemoryFormat::kContiguous) or (N, H, W, C) (kChannelsLast); shape() is the logical (N, C, H, W)
// in both. data() is raw storage: code that indexes it positionally as NCHW must first call
// contiguous(). Conversions (contiguous(), to_channels_last(), and reshape, which goes through
// contiguous() as torch's does) keep grad_fn: the autograd engine hands every node its gradient in
// the format of that node's output, converting when it arrives in the other one.
//
// kCUDA tensors hold device memory (runtime/device.h) and
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

// torch.contiguous_format / torch.channels_last (Note [memory format]).
enum class MemoryFormat { kContiguous, kChannelsLast };

std::string shape_str(const Shape& s);
int64_t shape_numel(const Shape& s);

class Tensor {
 public:
  Tensor() = default;
  static Tensor empty(Shape shape, Device device = Device::kCPU);  // contents undefined
  // kChannelsLast needs a 4-D shape (torch.empty(..., memory_format=torch.channels_last)).
  static Tensor empty(Shape shape, MemoryFormat format);
  static Tensor zeros(Shape shape, MemoryFormat format);
  static Tensor zeros(Shape shape, Device device = Device::kCPU);
  static Tensor full(Shape shape, float value);
  static Tensor from(Shape shape, std::span<const float> values);

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  int64_t dim(int i) const;  // negative i counts from the end, as in PyTorch
  int ndim() const { return static_cast<int>(shape_.size()); }
  int64_t numel() const { return numel_; }
  Device device() const { return device_; }
  MemoryFormat memory_format() const { return format_; }
  bool is_channels_last() const { return format_ == MemoryFormat::kChannelsLast; }
  // torch's x.is_contiguous(memory_format=...): whether the storage is in `format`. A 4-D tensor
  // with C == 1 or H*W == 1 has the same storage in both, so it is in both.
  bool is_contiguous(MemoryFormat format = MemoryFormat::kContiguous) const;

  float* data() { return storage_.get(); }
  const float* data() const { return storage_.get(); }
  std::span<float> span() { return {data(), static_cast<size_t>(numel_)}; }
  std::span<const float> span() const { return {data(), static_cast<size_t>(numel_)}; }
  float& operator[](int64_t i) { return data()[i]; }
  float operator[](int64_t i) const { return data()[i]; }

  // Shares storage when contiguous; a channels_last tensor is first copied by contiguous(), so the
  // values come out in the logical NCHW order, as torch's reshape. One dim may be -1.
  Tensor reshape(Shape shape) const;
  // x.contiguous(): the NCHW copy of a channels_last tensor, else this tensor itself.
  // to_channels_last(): x.to(memory_format=torch.channels_last) of a 4-D tensor, (N, C, H, W) ->
  // storage (N, H, W, C); this tensor itself when already channels_last. Both keep grad_fn (Note
  // [memory format]), and where C == 1 or H*W == 1 only relabel (the storage is the same).
  Tensor contiguous() const;
  Tensor to_channels_last() const;
  // This tensor in `format`: contiguous() or to_channels_last().
  Tensor to_format(MemoryFormat format) const;
  // numel(shape) elements of base's storage from `offset` on, shared (keeps base alive): the
  // gradient reducer makes parameter gradients such views of its bucket buffers, so all-reducing
  // a bucket reduces the gradients in place, with no copy in or out.
  static Tensor view(const Tensor& base, int64_t offset, Shape shape);
  Tensor to(Device device) const;     // a copy on `device` (this tensor itself if already there)
  Tensor clone() const;  // a copy out of the graph, in this tensor's format (torch: x.detach().clone())
  void fill(float value);
  // Same numel required; when both are 4-D of one shape in different formats, the values are
  // copied by logical position (torch's copy_), else the storage is copied as is.
  void copy_from(const Tensor& other);

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
  MemoryFormat format_ = MemoryFormat::kContiguous;
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
