// Bucket layout (Note [bucket order] in reducer.h), launch on readiness, finalize.
#include "comm/reducer.h"

#include <algorithm>
#include <cstring>

#include "runtime/check.h"

namespace lockstep {

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }
}  // namespace

Reducer::Reducer(Communicator& comm, std::vector<NamedParameter> params, ReducerOptions o)
    : comm_(comm), o_(o), params_(std::move(params)) {
  LOCKSTEP_FAIL_IF(o_.bucket_bytes <= 0 || o_.first_bucket_bytes <= 0 || o_.chunk_bytes < 0)
      << "reducer: bucket sizes must be positive and the chunk size not negative, got " << o_.bucket_bytes
      << ", " << o_.first_bucket_bytes << " and " << o_.chunk_bytes;
  for (const auto& [name, p] : params_)
    LOCKSTEP_CHECK(p && p->value.defined()) << "reducer: parameter " << name << " is undefined";
  // Note [bucket order]: reverse registration order, greedy packing up to bucket_bytes.
  param_bucket_.resize(params_.size());
  param_slot_.resize(params_.size());
  ready_.assign(params_.size(), 0);
  credited_.assign(params_.size(), 0);
  const auto floats = [](int64_t bytes) { return static_cast<size_t>(bytes / static_cast<int64_t>(sizeof(float))); };
  const size_t cap = floats(o_.bucket_bytes), first_cap = floats(std::min(o_.first_bucket_bytes, o_.bucket_bytes));
  size_t fill = 0;
  for (size_t i = params_.size(); i-- > 0;) {
    Parameter* p = params_[i].second;
    const auto n = static_cast<size_t>(p->value.numel());
    if (buckets_.empty() || (fill > 0 && fill + n > (buckets_.size() == 1 ? first_cap : cap))) {
      buckets_.emplace_back();
      fill = 0;
    }
    param_slot_[i] = buckets_.back().slots.size();
    buckets_.back().slots.push_back({p, fill, i});
    fill += n;
    param_bucket_[i] = buckets_.size() - 1;
  }
  // Note [chunks]: k equal chunks of at most chunk_bytes, each a multiple of 16 floats (64 bytes)
  // but the last.
  constexpr size_t kAlignFloats = 16;
  const size_t chunk_cap = o_.chunk_bytes == 0 ? SIZE_MAX
                                               : std::max(kAlignFloats, floats(o_.chunk_bytes) / kAlignFloats * kAlignFloats);
  for (size_t b = 0; b < buckets_.size(); ++b) {
    Bucket& bk = buckets_[b];
    size_t total = 0;
    for (const Slot& s : bk.slots) total += static_cast<size_t>(s.param->value.numel());
    bk.buffer = Tensor::zeros({static_cast<int64_t>(total)});
    if (o_.comm_hook == CommHook::kBf16Compress) bk.wire.resize(total);
    first_chunk_.push_back(chunks_.size());
    const size_t k = total <= chunk_cap ? 1 : (total + chunk_cap - 1) / chunk_cap;
    const size_t size = ((total + k - 1) / k + kAlignFloats - 1) / kAlignFloats * kAlignFloats;
    for (size_t begin = 0, c = 0; begin < total || c == 0; begin += size, ++c)
      chunks_.push_back({.bucket = b, .index = c, .begin = begin, .end = std::min(total, begin + size)});
    for (const Slot& s : bk.slots) {
      const size_t end = s.offset + static_cast<size_t>(s.param->value.numel());
      for (size_t c = first_chunk_[b]; c < chunks_.size(); ++c)
        if (end > chunks_[c].begin && end <= chunks_[c].end) ++chunks_[c].params;
    }
  }
  bind_gradients();
  reset_pending();
  attach_hooks();
}

void Reducer::attach_hooks() {
  for (size_t i = 0; i < params_.size(); ++i) {
    Parameter* p = params_[i].second;
    p->on_grad_ready = [this, i](Parameter&) { param_ready(i); };
    // Rows are worth reporting only for a parameter that some chunk boundary cuts (Note [chunks]).
    const Bucket& bk = buckets_[param_bucket_[i]];
    const Slot& s = bk.slots[param_slot_[i]];
    const size_t end = s.offset + static_cast<size_t>(p->value.numel());
    bool cut = false;
    for (size_t c = first_chunk_[param_bucket_[i]]; c < chunks_.size() && chunks_[c].bucket == param_bucket_[i]; ++c)
      cut = cut || (chunks_[c].end > s.offset && chunks_[c].end < end);
    if (cut && p->value.ndim() >= 1)
      p->on_grad_rows_ready = [this, i](Parameter&, int64_t rows) { param_rows_ready(i, rows); };
    else
      p->on_grad_rows_ready = nullptr;
  }
}

Reducer::~Reducer() {
  for (auto& [name, p] : params_) {
    p->on_grad_ready = nullptr;
    p->on_grad_rows_ready = nullptr;
  }
}

void Reducer::bind_gradients() {
  for (Bucket& b : buckets_)
    for (const Slot& s : b.slots) s.param->grad = Tensor();  // force the copy-in below
  for (Bucket& b : buckets_)
    for (const Slot& s : b.slots) bind_slot(b, s);
}

void Reducer::bind_slot(Bucket& b, const Slot& s) {
  float* home = b.buffer.data() + s.offset;
  Tensor& g = s.param->grad;
  if (g.defined() && g.data() == home) return;
  const auto t0 = Clock::now();
  const auto n = static_cast<size_t>(s.param->value.numel());
  if (g.defined()) {
    LOCKSTEP_CHECK(g.numel() == s.param->value.numel())
        << "reducer: parameter " << params_[s.index].first << " has a gradient of " << g.numel() << " elements for "
        << s.param->value.numel() << " values";
    std::memcpy(home, g.data(), n * sizeof(float));
  } else {
    std::memset(home, 0, n * sizeof(float));
  }
  g = Tensor::view(b.buffer, static_cast<int64_t>(s.offset), s.param->value.shape());
  stats_.pack_seconds += since(t0);
}

void Reducer::reset_pending() {
  for (Chunk& c : chunks_) c.pending = c.end - c.begin;
  next_launch_ = 0;
  std::fill(ready_.begin(), ready_.end(), 0);
  std::fill(credited_.begin(), credited_.end(), 0);
}

void Reducer::credit(size_t index, size_t end) {
  const size_t begin = credited_[index];
  if (end <= begin) return;
  credited_[index] = end;
  const size_t b = param_bucket_[index];
  const size_t offset = buckets_[b].slots[param_slot_[index]].offset;
  const size_t lo = offset + begin, hi = offset + end;  // within the bucket's buffer
  for (size_t c = first_chunk_[b]; c < chunks_.size() && chunks_[c].bucket == b; ++c) {
    Chunk& ch = chunks_[c];
    const size_t a = std::max(lo, ch.begin), z = std::min(hi, ch.end);
    if (a < z) ch.pending -= z - a;
  }
  if (o_.overlap) launch_ready_in_order();
}

void Reducer::param_ready(size_t index) {
  if (!sync_) return;
  LOCKSTEP_CHECK(index < params_.size()) << "reducer: parameter " << index << " of " << params_.size();
  if (ready_[index]) return;  // a hook may fire again in a second backward before finalize
  ready_[index] = 1;
  Bucket& bk = buckets_[param_bucket_[index]];
  bind_slot(bk, bk.slots[param_slot_[index]]);
  credit(index, static_cast<size_t>(params_[index].second->value.numel()));
}

void Reducer::param_rows_ready(size_t index, int64_t rows) {
  if (!sync_) return;
  LOCKSTEP_CHECK(index < params_.size()) << "reducer: parameter " << index << " of " << params_.size();
  if (ready_[index] || rows <= 0) return;
  Bucket& bk = buckets_[param_bucket_[index]];
  const Slot& s = bk.slots[param_slot_[index]];
  const Tensor& v = s.param->value;
  if (!s.param->grad.defined() || s.param->grad.data() != bk.buffer.data() + s.offset || v.ndim() < 1) return;
  const int64_t row = v.numel() / std::max<int64_t>(1, v.dim(0));
  credit(index, static_cast<size_t>(std::min(rows, v.dim(0)) * row));
}

void Reducer::set_trace(TraceRecorder* rec) {
  trace_ = rec;
  trace_names_.clear();
  if (!rec) return;
  for (size_t b = 0; b < buckets_.size(); ++b) trace_names_.push_back(rec->intern("allreduce bucket " + std::to_string(b)));
  trace_bucket_ = rec->intern("bucket");
  trace_chunk_ = rec->intern("chunk");
  trace_bytes_ = rec->intern("bytes");
  trace_params_ = rec->intern("params");
}

void Reducer::launch_ready_in_order() {
  while (next_launch_ < chunks_.size() && chunks_[next_launch_].pending == 0) {
    Chunk& c = chunks_[next_launch_++];
    const int64_t bytes = static_cast<int64_t>(c.end - c.begin) *
                          static_cast<int64_t>(buckets_[c.bucket].wire.empty() ? sizeof(float) : sizeof(BFloat16));
    if (trace_) {
      TraceTagScope tag({.rec = trace_,
                         .name = trace_names_[c.bucket],
                         .cat = TraceCat::kAllReduce,
                         .args = {{{trace_bucket_, static_cast<int64_t>(c.bucket)},
                                   {trace_chunk_, static_cast<int64_t>(c.index)},
                                   {trace_bytes_, bytes},
                                   {trace_params_, c.params}}},
                         .nargs = 4});
      c.work = start_allreduce(c);
    } else {
      c.work = start_allreduce(c);
    }
    ++stats_.allreduces;
    stats_.bytes += bytes;
  }
}

Work Reducer::start_allreduce(Chunk& c) {
  Bucket& b = buckets_[c.bucket];
  const std::span<float> grads = b.buffer.span().subspan(c.begin, c.end - c.begin);
  if (o_.comm_hook == CommHook::kAllReduce)
    return comm_.all_reduce(grads, o_.predivided ? ReduceOp::kSum : ReduceOp::kAverage);
  // bf16: always a sum; an average is taken when widening (one rounding fewer than in bf16).
  const std::span<BFloat16> wire = std::span<BFloat16>(b.wire).subspan(c.begin, c.end - c.begin);
  compress_bf16(grads, wire);
  return comm_.all_reduce_bf16(wire, ReduceOp::kSum);
}

void Reducer::finish_allreduce(Chunk& c) {
  if (o_.comm_hook != CommHook::kBf16Compress) return;
  Bucket& b = buckets_[c.bucket];
  decompress_bf16(std::span<BFloat16>(b.wire).subspan(c.begin, c.end - c.begin),
                  b.buffer.span().subspan(c.begin, c.end - c.begin),
                  o_.predivided ? 1.f : 1.f / static_cast<float>(comm_.size()));
}

void Reducer::finalize() {
  if (!sync_) return;
  std::string unused;
  for (size_t i = 0; i < params_.size() && unused.empty(); ++i)
    if (!ready_[i]) unused = params_[i].first;
  if (!unused.empty() && !o_.find_unused_parameters) {
    for (Chunk& c : chunks_) c.work.wait();  // what was launched completes on every rank
    reset_pending();
    LOCKSTEP_FAIL_IF(true) << "parameter " << unused
                           << " received no gradient in this step: it took no part in computing the loss. "
                              "Set distributed.find_unused_parameters: true in the job (in C++: "
                              "ReducerOptions::find_unused_parameters) to allow that, as torch DDP's "
                              "find_unused_parameters; its gradient is then all-reduced as it stands";
  }
  // Unused parameters' gradients, as they stand, and without overlap every chunk, go now.
  for (size_t i = 0; i < params_.size(); ++i) {
    if (ready_[i]) continue;
    ready_[i] = 1;
    Bucket& bk = buckets_[param_bucket_[i]];
    bind_slot(bk, bk.slots[param_slot_[i]]);
    credit(i, static_cast<size_t>(params_[i].second->value.numel()));
  }
  launch_ready_in_order();
  for (Chunk& c : chunks_) {
    const auto t0 = Clock::now();
    c.work.wait();
    stats_.finalize_wait_seconds += since(t0);
    finish_allreduce(c);
  }
  ++stats_.syncs;
  reset_pending();
}

std::vector<std::vector<size_t>> Reducer::bucket_layout() const {
  std::vector<std::vector<size_t>> out;
  for (const Bucket& b : buckets_) {
    out.emplace_back();
    for (const Slot& s : b.slots) out.back().push_back(s.index);
  }
  return out;
}

double Reducer::time_bare_allreduce(int reps) {
  LOCKSTEP_CHECK(reps > 0) << "reps " << reps;
  std::vector<double> times;
  std::vector<std::vector<float>> scratch;
  std::vector<std::vector<BFloat16>> wire;
  for (const Chunk& c : chunks_) {
    const std::span<const float> g = buckets_[c.bucket].buffer.span().subspan(c.begin, c.end - c.begin);
    scratch.emplace_back(g.begin(), g.end());
    wire.emplace_back(buckets_[c.bucket].wire.empty() ? 0 : g.size());
  }
  comm_.barrier().wait();
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    std::vector<Work> works;
    for (size_t c = 0; c < scratch.size(); ++c) {
      if (o_.comm_hook == CommHook::kBf16Compress) {  // with both conversions, as a step pays them
        compress_bf16(scratch[c], wire[c]);
        works.push_back(comm_.all_reduce_bf16(wire[c], ReduceOp::kSum));
      } else {
        works.push_back(comm_.all_reduce(std::span<float>(scratch[c]), o_.predivided ? ReduceOp::kSum : ReduceOp::kAverage));
      }
    }
    for (size_t c = 0; c < works.size(); ++c) {
      works[c].wait();
      if (o_.comm_hook == CommHook::kBf16Compress) decompress_bf16(wire[c], scratch[c]);
    }
    times.push_back(since(t0));
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace lockstep
