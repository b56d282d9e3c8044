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
  LOCKSTEP_FAIL_IF(o_.bucket_bytes <= 0 || o_.first_bucket_bytes <= 0)
      << "reducer: bucket sizes must be positive, got " << o_.bucket_bytes << " and " << o_.first_bucket_bytes;
  for (const auto& [name, p] : params_)
    LOCKSTEP_CHECK(p && p->value.defined()) << "reducer: parameter " << name << " is undefined";
  // Note [bucket order]: reverse registration order, greedy packing up to bucket_bytes.
  param_bucket_.resize(params_.size());
  ready_.assign(params_.size(), 0);
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
    buckets_.back().slots.push_back({p, fill, i});
    fill += n;
    param_bucket_[i] = buckets_.size() - 1;
  }
  for (Bucket& b : buckets_) {
    int64_t total = 0;
    for (const Slot& s : b.slots) total += s.param->value.numel();
    b.buffer = Tensor::zeros({total});
    if (o_.comm_hook == CommHook::kBf16Compress) b.wire.resize(static_cast<size_t>(total));
  }
  bind_gradients();
  reset_pending();
  attach_hooks();
}

void Reducer::attach_hooks() {
  for (size_t i = 0; i < params_.size(); ++i)
    params_[i].second->on_grad_ready = [this, i](Parameter&) { param_ready(i); };
}

Reducer::~Reducer() {
  for (auto& [name, p] : params_) p->on_grad_ready = nullptr;
}

void Reducer::bind_gradients() {
  for (Bucket& b : buckets_)
    for (const Slot& s : b.slots) s.param->grad = Tensor();  // force the copy-in below
  for (Bucket& b : buckets_) bind(b);
}

void Reducer::bind(Bucket& b) {
  for (const Slot& s : b.slots) {
    float* home = b.buffer.data() + s.offset;
    Tensor& g = s.param->grad;
    if (g.defined() && g.data() == home) continue;
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
}

void Reducer::reset_pending() {
  for (Bucket& b : buckets_) {
    b.pending = b.slots.size();
    b.ready = false;
  }
  next_launch_ = 0;
  std::fill(ready_.begin(), ready_.end(), 0);
}

void Reducer::param_ready(size_t index) {
  if (!sync_) return;
  LOCKSTEP_CHECK(index < params_.size()) << "reducer: parameter " << index << " of " << params_.size();
  if (ready_[index]) return;  // a hook may fire again in a second backward before finalize
  ready_[index] = 1;
  Bucket& bk = buckets_[param_bucket_[index]];
  if (--bk.pending == 0) {
    bind(bk);
    bk.ready = true;
    if (o_.overlap) launch_ready_in_order();
  }
}

void Reducer::set_trace(TraceRecorder* rec) {
  trace_ = rec;
  trace_names_.clear();
  if (!rec) return;
  for (size_t b = 0; b < buckets_.size(); ++b) trace_names_.push_back(rec->intern("allreduce bucket " + std::to_string(b)));
  trace_bucket_ = rec->intern("bucket");
  trace_bytes_ = rec->intern("bytes");
  trace_params_ = rec->intern("params");
}

void Reducer::launch_ready_in_order() {
  while (next_launch_ < buckets_.size() && buckets_[next_launch_].ready) {
    const size_t index = next_launch_++;
    Bucket& bk = buckets_[index];
    const int64_t bytes = bk.buffer.numel() * static_cast<int64_t>(bk.wire.empty() ? sizeof(float) : sizeof(BFloat16));
    if (trace_) {
      TraceTagScope tag({.rec = trace_,
                         .name = trace_names_[index],
                         .cat = TraceCat::kAllReduce,
                         .args = {{{trace_bucket_, static_cast<int64_t>(index)},
                                   {trace_bytes_, bytes},
                                   {trace_params_, static_cast<int64_t>(bk.slots.size())}}},
                         .nargs = 3});
      bk.work = start_allreduce(bk);
    } else {
      bk.work = start_allreduce(bk);
    }
    ++stats_.allreduces;
    stats_.bytes += bytes;
  }
}

Work Reducer::start_allreduce(Bucket& b) {
  if (o_.comm_hook == CommHook::kAllReduce)
    return comm_.all_reduce(b.buffer.span(), o_.predivided ? ReduceOp::kSum : ReduceOp::kAverage);
  // bf16: always a sum; an average is taken when widening (one rounding fewer than in bf16).
  compress_bf16(b.buffer.span(), b.wire);
  return comm_.all_reduce_bf16(b.wire, ReduceOp::kSum);
}

void Reducer::finish_allreduce(Bucket& b) {
  if (o_.comm_hook != CommHook::kBf16Compress) return;
  decompress_bf16(b.wire, b.buffer.span(), o_.predivided ? 1.f : 1.f / static_cast<float>(comm_.size()));
}

void Reducer::finalize() {
  if (!sync_) return;
  std::string unused;
  for (size_t i = 0; i < params_.size() && unused.empty(); ++i)
    if (!ready_[i]) unused = params_[i].first;
  if (!unused.empty() && !o_.find_unused_parameters) {
    for (Bucket& bk : buckets_) bk.work.wait();  // what was launched completes on every rank
    reset_pending();
    LOCKSTEP_FAIL_IF(true) << "parameter " << unused
                           << " received no gradient in this step: it took no part in computing the loss. "
                              "Set distributed.find_unused_parameters: true in the job (in C++: "
                              "ReducerOptions::find_unused_parameters) to allow that, as torch DDP's "
                              "find_unused_parameters; its gradient is then all-reduced as it stands";
  }
  // Buckets holding unused parameters, or all of them without overlap, go now.
  for (size_t b = 0; b < buckets_.size(); ++b) {
    Bucket& bk = buckets_[b];
    if (bk.ready || b < next_launch_) continue;
    bind(bk);
    bk.ready = true;
  }
  launch_ready_in_order();
  for (Bucket& bk : buckets_) {
    const auto t0 = Clock::now();
    bk.work.wait();
    stats_.finalize_wait_seconds += since(t0);
    finish_allreduce(bk);
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
  for (const Bucket& b : buckets_) {
    scratch.emplace_back(b.buffer.span().begin(), b.buffer.span().end());
    wire.emplace_back(b.wire.size());
  }
  comm_.barrier().wait();
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    std::vector<Work> works;
    for (size_t b = 0; b < scratch.size(); ++b) {
      if (o_.comm_hook == CommHook::kBf16Compress) {  // with both conversions, as a step pays them
        compress_bf16(scratch[b], wire[b]);
        works.push_back(comm_.all_reduce_bf16(wire[b], ReduceOp::kSum));
      } else {
        works.push_back(comm_.all_reduce(std::span<float>(scratch[b]), o_.predivided ? ReduceOp::kSum : ReduceOp::kAverage));
      }
    }
    for (size_t b = 0; b < works.size(); ++b) {
      works[b].wait();
      if (o_.comm_hook == CommHook::kBf16Compress) decompress_bf16(wire[b], scratch[b]);
    }
    times.push_back(since(t0));
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace lockstep
