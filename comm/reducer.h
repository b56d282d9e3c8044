// Gradient bucketing reducer (torch DDP's Reducer): packs gradients into ~25 MiB buckets in reverse
// registration order and starts each bucket's all-reduce (average over ranks) as soon as its last
// gradient is final, so communication overlaps the rest of backward. A gradient is final when its
// parameter's autograd hook fires (Parameter::on_grad_ready, runtime/autograd.h), so any graph is
// data-parallel: residual blocks, branches, shared inputs. finalize(), before the optimizer step, waits for
// every bucket. Gradients are views of the bucket buffers (PyTorch's gradient_as_bucket_view):
// the constructor re-points every parameter's grad into its bucket, so the all-reduce averages
// them in place, with no copy in or out. A grad replaced behind the reducer's back is copied in
// and re-pointed when it is final (or at finalize).
//
// A parameter whose hook did not fire by finalize() took no part in the loss: by default an error
// naming it; with find_unused_parameters (torch DDP's option of that name) its gradient, as it
// stands (zero after zero_grad), is all-reduced with the rest, so every replica stays identical.
//
// Note [bucket order]: parameters are taken in reverse registration order (the order backward
// finishes them, as PyTorch's DDP) and packed greedily: a bucket closes when adding the next
// parameter would pass bucket_bytes (first_bucket_bytes for bucket 0, 1 MiB as PyTorch, so the
// first all-reduce starts early even when the whole model fits one bucket); a parameter is never
// split and a bucket holds at least one.
// The layout is a pure function of the parameter shapes and bucket_bytes, hence identical on
// every rank, and buckets are launched strictly in index order (a bucket that is ready early waits
// for its predecessors), so every rank issues the same all-reduces in the same order.
//
// Note [chunks]: with chunk_bytes set, a bucket larger than it is all-reduced as several all-reduces over equal
// consecutive chunks of its buffer (at most chunk_bytes each, 64-byte aligned), and a chunk starts
// as soon as every gradient element in it is final. Elements become final with their parameter's
// on_grad_ready hook, or earlier, a block of rows at a time, through on_grad_rows_ready
// (grad_rows_final, runtime/autograd.h): a layer that computes a large weight gradient in blocks
// of rows (Linear) lets its first rows' all-reduce overlap the computing of the rest. That is what
// hides most of a first layer's weight gradient, which backward produces last, with nothing left
// to overlap. The chunks, like the buckets, are a pure function of the shapes and options, and
// they launch strictly in order (bucket by bucket, chunk by chunk), so every rank issues the same
// all-reduces in the same order. On 2 ranks an element's sum is the same whatever the chunks (a + b
// = b + a); on more, the order in which MPI adds an element's terms follows the algorithm it picks
// for the message's size and the element's place in the message, so chunk_bytes, like bucket_bytes
// (or PyTorch DDP's bucket_cap_mb), may change the last bits of an average.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "comm/communicator.h"
#include "runtime/parameter.h"
#include "runtime/trace_recorder.h"

namespace lockstep {

// How a bucket is all-reduced, after PyTorch DDP's default communication hooks
// (torch.distributed.algorithms.ddp_comm_hooks.default_hooks, registered with
// model.register_comm_hook): kAllReduce sums the fp32 gradients (allreduce_hook); kBf16Compress
// (bf16_compress_hook) rounds the bucket to bfloat16 (nearest even, comm/bf16.h), all-reduces half
// the bytes with every pairwise sum added in fp32 and rounded to bf16, and widens the average back
// into the fp32 gradients. Each gradient then carries about 3 significant digits: per element,
// |result - exact average| <= about (world size) * 2^-8 * max |rank's gradient|.
enum class CommHook { kAllReduce, kBf16Compress };

struct ReducerOptions {
  int64_t bucket_bytes = int64_t{25} << 20;  // 25 MiB, PyTorch's bucket_cap_mb default
  int64_t first_bucket_bytes = int64_t{1} << 20;  // PyTorch's 1 MiB first bucket; capped by bucket_bytes
  // Note [chunks]: the most one all-reduce moves (of fp32 gradients); a larger bucket goes out in
  // equal chunks, each as soon as it is final (at least 64 bytes each). 0: every bucket in one
  // all-reduce, as PyTorch DDP sends it (the default: on a machine with no core to spare for
  // communication, chunks cost more than they hide; see bench/ddp_bench.cc's CHUNK_MB).
  int64_t chunk_bytes = 0;
  // The caller scaled its loss gradient by 1 / comm.size(), so every gradient arrives divided by
  // the world size and a sum over ranks is the average: buckets are all-reduced with kSum, saving a
  // pass over every bucket after its all-reduce (Horovod's gradient predivide). Linear in the loss
  // gradient, so exact for a power-of-two world size and within rounding otherwise.
  bool predivided = false;
  bool find_unused_parameters = false;
  // Start each bucket's all-reduce from the hooks as soon as it is full (true), or all of them in
  // finalize (false: no overlap; for measuring what the overlap buys).
  bool overlap = true;
  CommHook comm_hook = CommHook::kAllReduce;
};

using NamedParameter = std::pair<std::string, Parameter*>;

// Accumulated over finalize() calls until reset_stats().
struct ReducerStats {
  int64_t syncs = 0;                // finalize() calls that reduced (not under no_sync)
  int64_t allreduces = 0;           // chunk all-reduces issued (Note [chunks])
  int64_t bytes = 0;                // bytes all-reduced (2 per gradient with kBf16Compress)
  double finalize_wait_seconds = 0; // blocked in finalize waiting for buckets: exposed communication
  double pack_seconds = 0;          // copying grads that were not bucket views into buckets
};

class Reducer {
 public:
  // params: the model's named parameters in registration order (Module::named_parameters()). Sets
  // each parameter's on_grad_ready hook (cleared again by the destructor). Every parameter's grad
  // must be shaped like its value at finalize time.
  Reducer(Communicator& comm, std::vector<NamedParameter> params, ReducerOptions o = {});
  ~Reducer();
  Reducer(const Reducer&) = delete;
  Reducer& operator=(const Reducer&) = delete;

  // Parameter `index`'s gradient is final for this backward (its hook): chunks whose last gradient
  // element this was are launched (in order). A no-op under no_sync.
  void param_ready(size_t index);
  // The first `rows` rows (along dim 0) of parameter `index`'s gradient are final (its rows hook):
  // chunks now wholly final are launched (in order). Only while its gradient is its bucket view;
  // rows reported before, and rows past the end, are ignored. A no-op under no_sync.
  void param_rows_ready(size_t index, int64_t rows);
  // Launches any bucket not started yet (in order) and waits for all of them: the parameters'
  // gradients are then the averages. Throws Error naming the first parameter that got no gradient
  // in this backward, unless find_unused_parameters (after waiting for what was launched, so every
  // rank stays in step). A no-op under no_sync: gradients stay local and keep accumulating until
  // the step whose finalize syncs them.
  void finalize();

  // Gradient accumulation: while sync is off, neither param_ready nor finalize communicates.
  void set_sync(bool on) { sync_ = on; }
  bool sync() const { return sync_; }
  // RAII form: `{ auto guard = reducer.no_sync(); forward; backward; }` for all micro-batches but
  // the last.
  class NoSyncGuard {
   public:
    explicit NoSyncGuard(Reducer& r) : r_(r), prev_(r.sync()) { r_.set_sync(false); }
    ~NoSyncGuard() { r_.set_sync(prev_); }
    NoSyncGuard(const NoSyncGuard&) = delete;
    NoSyncGuard& operator=(const NoSyncGuard&) = delete;

   private:
    Reducer& r_;
    bool prev_;
  };
  NoSyncGuard no_sync() { return NoSyncGuard(*this); }

  // Re-points every parameter's grad into this reducer's buckets, keeping its values (another
  // reducer over the same parameters may have taken them over).
  void bind_gradients();
  // Makes the parameters' on_grad_ready (and, where a chunk boundary cuts one, on_grad_rows_ready)
  // hooks call this reducer (the constructor does; another reducer over the same parameters takes
  // them over when constructed).
  void attach_hooks();

  // Bucket b's parameters, as indices into the registration order of `params`.
  std::vector<std::vector<size_t>> bucket_layout() const;
  size_t num_buckets() const { return buckets_.size(); }
  // All-reduces per synchronised step: the chunks of every bucket (Note [chunks]).
  size_t num_chunks() const { return chunks_.size(); }
  const ReducerStats& stats() const { return stats_; }
  void reset_stats() { stats_ = {}; }

  // Records each chunk's all-reduce on rec's comm lane, named "allreduce bucket B", with args
  // bucket, chunk (its index within the bucket), bytes (as sent: 2 per gradient with
  // kBf16Compress) and params (the parameters whose gradient ends in this chunk). Null: off.
  void set_trace(TraceRecorder* rec);

  // Collective (every rank must call it): seconds for all-reducing every chunk back to back with
  // nothing else running, the median of `reps` rounds. 1 - finalize wait / this = the share of
  // communication hidden behind backward. Gradients are left untouched.
  double time_bare_allreduce(int reps = 5);

 private:
  struct Slot {
    Parameter* param;
    size_t offset;  // in floats, within its bucket's buffer
    size_t index;   // registration index
  };
  struct Bucket {
    std::vector<Slot> slots;
    Tensor buffer;  // the gradients of its slots, as views
    std::vector<BFloat16> wire;  // kBf16Compress: the buffer as all-reduced; empty otherwise
  };
  // Note [chunks]: floats [begin, end) of a bucket's buffer, all-reduced by one collective.
  struct Chunk {
    size_t bucket, index;  // index: within its bucket
    size_t begin, end;
    int64_t params = 0;  // parameters whose gradient ends in it (for the timeline)
    size_t pending = 0;  // elements not final yet in this backward
    Work work;
  };
  void credit(size_t index, size_t end);  // params_[index]'s elements up to `end` are final
  void launch_ready_in_order();
  void bind_slot(Bucket& b, const Slot& s);  // a grad that is not its view: copy in and re-point
  void reset_pending();
  Work start_allreduce(Chunk& c);  // per comm_hook; finish_allreduce after its Work completes
  void finish_allreduce(Chunk& c);

  Communicator& comm_;
  ReducerOptions o_;
  std::vector<NamedParameter> params_;
  std::vector<Bucket> buckets_;
  std::vector<Chunk> chunks_;         // in launch order: bucket by bucket
  std::vector<size_t> param_bucket_;  // params_[i]'s bucket
  std::vector<size_t> param_slot_;    // params_[i]'s slot within it
  std::vector<size_t> first_chunk_;   // per bucket: its first chunk in chunks_
  std::vector<char> ready_;           // params_[i]'s hook fired in this backward
  std::vector<size_t> credited_;      // params_[i]'s elements [0, credited_) counted final
  size_t next_launch_ = 0;            // in chunks_
  bool sync_ = true;
  ReducerStats stats_;
  TraceRecorder* trace_ = nullptr;
  std::vector<uint32_t> trace_names_;  // per bucket
  uint32_t trace_bucket_ = 0, trace_chunk_ = 0, trace_bytes_ = 0, trace_params_ = 0;  // arg keys
};

}  // namespace lockstep
