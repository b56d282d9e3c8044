// Job file parsing (google::protobuf::TextFormat) and validation. Every message is one line
// "PATH: field.path: why"; strings from the file are escaped before they are quoted in it.
#include "launcher/job_file.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <type_traits>

#include "launcher/data_check.h"
#include "launcher/init_weights.h"
#include "launcher/job_builder.h"
#include "launcher/job_sampler.h"
#include "runtime/data/distributed_sampler.h"
#include "layers/reference_models.h"
#include "launcher/quoted.h"
#include "runtime/check.h"
#include "runtime/checkpoint/user_file.h"
#include "runtime/precision.h"

namespace lockstep {
namespace {

using namespace job_limits;

// Line breaks in a message from a library become spaces: an error is one line.
std::string one_line(std::string s) {
  std::replace_if(s.begin(), s.end(), [](char ch) { return ch == '\n' || ch == '\r'; }, ' ');
  return s;
}

// The enum type of a field called `name` anywhere in the job's message tree (first found), or null.
const google::protobuf::EnumDescriptor* enum_field_named(const google::protobuf::Descriptor* d, const std::string& name,
                                                         std::vector<const google::protobuf::Descriptor*>& seen) {
  if (std::find(seen.begin(), seen.end(), d) != seen.end()) return nullptr;
  seen.push_back(d);
  for (int i = 0; i < d->field_count(); ++i) {
    const auto* f = d->field(i);
    if (f->name() == name && f->enum_type()) return f->enum_type();
    if (f->message_type())
      if (const auto* e = enum_field_named(f->message_type(), name, seen)) return e;
  }
  return nullptr;
}

// The parser's first error as `path:line:column: message`. An unknown enum name is reported as the
// numeric case is, naming the field, the value and the known values, at the value's own line and
// column: the parser reports it where the token after the value starts, which may be the next line.
class Collector : public google::protobuf::io::ErrorCollector {
 public:
  Collector(std::string path, const std::string& text) : path_(std::move(path)), text_(text) {}
  void AddError(int line, int column, const std::string& message) override {
    if (!first_.empty()) return;
    static const std::regex unknown_enum("Unknown enumeration value of \"([^\"]*)\" for field \"([^\"]*)\"\\.?");
    std::smatch m;
    if (std::regex_search(message, m, unknown_enum)) {
      std::vector<const google::protobuf::Descriptor*> seen;
      if (const auto* e = enum_field_named(proto::JobSpec::descriptor(), m[2], seen)) {
        std::string known;
        for (int i = 0; i < e->value_count(); ++i) known += (i ? ", " : "") + e->value(i)->name();
        locate(m[2].str() + "\\s*:\\s*" + m[1].str() + "\\b", line, column);
        first_ = path_ + ":" + std::to_string(line + 1) + ":" + std::to_string(column + 1) + ": " + m[2].str() +
                 ": unknown value " + m[1].str() + " (known: " + known + ")";
        return;
      }
    }
    first_ = path_ + ":" + std::to_string(line + 1) + ":" + std::to_string(column + 1) + ": " + one_line(message);
  }
  void AddWarning(int, int, const std::string&) override {}
  const std::string& first() const { return first_; }

 private:
  // The 0-based line and column of the last match of `pattern` that starts before (line, column);
  // unchanged where there is none.
  void locate(const std::string& pattern, int& line, int& column) const {
    size_t limit = 0;
    for (int l = 0; l < line && limit != std::string::npos; ++l) limit = text_.find('\n', limit) + 1;
    if (limit == std::string::npos || (limit == 0 && line > 0)) return;
    limit = std::min(text_.size(), limit + static_cast<size_t>(column));
    const std::regex re(pattern);
    size_t at = std::string::npos;
    for (auto it = std::sregex_iterator(text_.begin(), text_.begin() + static_cast<std::ptrdiff_t>(limit), re);
         it != std::sregex_iterator(); ++it)
      at = static_cast<size_t>(it->position());
    if (at == std::string::npos) return;
    line = static_cast<int>(std::count(text_.begin(), text_.begin() + static_cast<std::ptrdiff_t>(at), '\n'));
    const size_t start = text_.rfind('\n', at == 0 ? 0 : at - 1);
    column = static_cast<int>(start == std::string::npos || at == 0 ? at : at - start - 1);
  }

  std::string path_;
  const std::string& text_;
  std::string first_;
};

// RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF.
bool valid_utf8(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    const unsigned char c = p[i];
    size_t len = 0;
    uint32_t cp = 0;
    if (c < 0x80) { ++i; continue; }
    if ((c & 0xe0) == 0xc0) len = 2, cp = c & 0x1f;
    else if ((c & 0xf0) == 0xe0) len = 3, cp = c & 0x0f;
    else if ((c & 0xf8) == 0xf0) len = 4, cp = c & 0x07;
    else return false;
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += len;
  }
  return true;
}

template <typename T>
std::string str(T v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

template <typename T>
bool finite(T v) {
  if constexpr (std::is_floating_point_v<T>) return std::isfinite(v);
  return true;
}

// Throws "PATH: field: why". Every range check refuses NaN and infinities and states the allowed
// range, e.g. "distributed.bucket_mb: must be at most 4096, got 1e+30 (allowed: (0, 4096])".
class Checker {
 public:
  explicit Checker(const std::string& path) : path_(path) {}
  [[noreturn]] void fail(const std::string& field, const std::string& why) const {
    throw Error(path_ + ": " + field + ": " + why);
  }
  // v in [lo, hi], or (lo, hi] when lo_open.
  template <typename T>
  void in_range(const std::string& field, T v, T lo, T hi, bool lo_open = false) const {
    const std::string allowed = std::string(" (allowed: ") + (lo_open ? "(" : "[") + str(lo) + ", " + str(hi) + "])";
    if (!finite(v)) fail(field, "must be finite, got " + str(v) + allowed);
    if (lo_open ? !(v > lo) : !(v >= lo)) {
      // A float below a positive minimum (a time, a size) is "not positive" when it is <= 0.
      const std::string why = lo == T(0)                                      ? (lo_open ? "must be positive" : "must not be negative")
                              : std::is_floating_point_v<T> && v <= T(0) ? "must be positive"
                              : (lo_open ? "must be greater than " : "must be at least ") + str(lo);
      fail(field, why + ", got " + str(v) + allowed);
    }
    if (!(v <= hi)) fail(field, "must be at most " + str(hi) + ", got " + str(v) + allowed);
  }
  template <typename T>
  void positive(const std::string& field, T v, T hi) const {
    in_range(field, v, T(0), hi, /*lo_open=*/true);
  }
  template <typename T>
  void non_negative(const std::string& field, T v, T hi) const {
    in_range(field, v, T(0), hi);
  }
  // [0, 1] when closed_top, else [0, 1).
  void unit(const std::string& field, float v, bool closed_top) const {
    if (!(v >= 0.f && (closed_top ? v <= 1.f : v < 1.f)))
      fail(field, std::string("must be in [0, 1") + (closed_top ? "]" : ")") + ", got " + str(v));
  }

 private:
  const std::string& path_;
};

void check_batch_norm(const Checker& c, const std::string& f, const proto::BatchNormLayer& b) {
  c.positive(f + "num_features", b.num_features(), kMaxFeatures);
  if (b.has_eps()) c.positive(f + "eps", b.eps(), 1.f);
  if (b.has_momentum()) c.unit(f + "momentum", b.momentum(), /*closed_top=*/true);
  if (b.has_momentum() && b.cumulative_average())
    c.fail(f + "cumulative_average", "set either momentum or cumulative_average, not both");
}

// Each size of model.layers[i], named "model.layers[i].<kind>.<field>".
void check_layer(const Checker& c, const proto::Layer& l, int i) {
  const std::string at = "model.layers[" + std::to_string(i) + "]";
  if (l.kind_case() == proto::Layer::KIND_NOT_SET) c.fail(at, "no layer kind set");
  // The oneof case is the field number of the kind that is set.
  const std::string f = at + "." + l.GetDescriptor()->FindFieldByNumber(l.kind_case())->name() + ".";
  switch (l.kind_case()) {
    case proto::Layer::kLinear:
      c.positive(f + "in_features", l.linear().in_features(), kMaxFeatures);
      c.positive(f + "out_features", l.linear().out_features(), kMaxFeatures);
      break;
    case proto::Layer::kConv2D: {
      const auto& k = l.conv2d();
      c.positive(f + "in_channels", k.in_channels(), kMaxFeatures);
      c.positive(f + "out_channels", k.out_channels(), kMaxFeatures);
      c.positive(f + "kernel_size", k.kernel_size(), kMaxWindow);
      if (k.has_stride()) c.positive(f + "stride", k.stride(), kMaxWindow);
      c.non_negative(f + "padding", k.padding(), kMaxWindow);
      if (k.has_dilation()) c.positive(f + "dilation", k.dilation(), kMaxWindow);
      if (k.has_groups()) {
        c.positive(f + "groups", k.groups(), kMaxFeatures);
        if (k.in_channels() % k.groups() != 0)
          c.fail(f + "groups", str(k.groups()) + " does not divide in_channels " + str(k.in_channels()));
        if (k.out_channels() % k.groups() != 0)
          c.fail(f + "groups", str(k.groups()) + " does not divide out_channels " + str(k.out_channels()));
      }
      break;
    }
    case proto::Layer::kMaxPool2D: {
      const auto& p = l.max_pool2d();
      c.positive(f + "kernel_size", p.kernel_size(), kMaxWindow);
      c.non_negative(f + "stride", p.stride(), kMaxWindow);  // 0: kernel_size
      if (p.has_dilation()) c.positive(f + "dilation", p.dilation(), kMaxWindow);
      c.in_range(f + "padding", p.padding(), int64_t{0}, p.kernel_size() / 2);  // as torch
      break;
    }
    case proto::Layer::kAvgPool2D: {
      const auto& p = l.avg_pool2d();
      c.positive(f + "kernel_size", p.kernel_size(), kMaxWindow);
      c.non_negative(f + "stride", p.stride(), kMaxWindow);  // 0: kernel_size
      c.in_range(f + "padding", p.padding(), int64_t{0}, p.kernel_size() / 2);  // as torch
      break;
    }
    case proto::Layer::kAdaptiveAvgPool2D: {
      const auto& p = l.adaptive_avg_pool2d();
      if (p.output_size_size() < 1 || p.output_size_size() > 2)
        c.fail(f + "output_size", "must hold 1 or 2 sizes ([s] or [h, w]), got " + str(p.output_size_size()));
      for (int j = 0; j < p.output_size_size(); ++j)
        c.positive(f + "output_size[" + std::to_string(j) + "]", p.output_size(j), kMaxFeatures);
      break;
    }
    case proto::Layer::kLayerNorm: {
      const auto& n = l.layer_norm();
      if (n.has_eps()) c.positive(f + "eps", n.eps(), 1.f);
      if (n.normalized_shape_size() < 1 || n.normalized_shape_size() > 3)
        c.fail(f + "normalized_shape", "must hold 1 to 3 sizes (the last dims of a sample), got " +
                                           str(n.normalized_shape_size()));
      for (int j = 0; j < n.normalized_shape_size(); ++j)
        c.positive(f + "normalized_shape[" + std::to_string(j) + "]", n.normalized_shape(j), kMaxFeatures);
      break;
    }
    case proto::Layer::kBatchNorm1D:
      check_batch_norm(c, f, l.batch_norm1d());
      break;
    case proto::Layer::kBatchNorm2D:
      check_batch_norm(c, f, l.batch_norm2d());
      break;
    case proto::Layer::kDropout:
      c.unit(f + "p", l.dropout().p(), /*closed_top=*/false);
      break;
    case proto::Layer::kLeakyRelu:
      if (l.leaky_relu().has_negative_slope())
        c.in_range(f + "negative_slope", l.leaky_relu().negative_slope(), -1000.f, 1000.f);
      break;
    case proto::Layer::kGelu:
      if (!l.gelu().approximate().empty() && l.gelu().approximate() != "none" && l.gelu().approximate() != "tanh")
        c.fail(f + "approximate", "must be \"none\" or \"tanh\", got " + quoted(l.gelu().approximate()));
      break;
    case proto::Layer::kConcat:
      if (l.concat().has_dim() && (l.concat().dim() < 1 || l.concat().dim() > 8))
        c.fail(f + "dim", "must be 1 to 8 (dim 0 is the batch), got " + std::to_string(l.concat().dim()));
      break;
    case proto::Layer::kRelu:
    case proto::Layer::kFlatten:
    case proto::Layer::kIdentity:
    case proto::Layer::kAdd:
    case proto::Layer::kSilu:
    case proto::Layer::kSigmoid:
    case proto::Layer::kTanh:
    case proto::Layer::KIND_NOT_SET:
      break;
  }
  if (l.name().size() > 256) c.fail(at + ".name", "longer than 256 bytes");
  for (int k = 0; k < l.inputs_size(); ++k)
    if (l.inputs(k).empty()) c.fail(at + ".inputs[" + std::to_string(k) + "]", "empty");
}

void check_model(const Checker& c, const proto::ModelSpec& m) {
  if (m.reference().empty() && m.layers_size() == 0) c.fail("model", "set model.reference or model.layers");
  if (!m.reference().empty() && m.layers_size() > 0)
    c.fail("model", "set either model.reference or model.layers, not both");
  if (!m.reference().empty()) {
    const auto names = reference_model_names();
    if (std::find(names.begin(), names.end(), m.reference()) == names.end()) {
      std::string known;
      for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
      c.fail("model.reference", "unknown model " + quoted(m.reference()) + " (known: " + known + ")");
    }
  }
  if (!proto::ModelSpec::MemoryFormat_IsValid(m.memory_format()))
    c.fail("model.memory_format", "unknown value " + str(m.memory_format()) + " (known: CHANNELS_LAST, CONTIGUOUS)");
  if (m.layers_size() > 0 && m.input_shape_size() == 0) c.fail("model.input_shape", "required with model.layers");
  if (m.init_from_fill_num_batches_tracked() && m.init_from().empty())
    c.fail("model.init_from_fill_num_batches_tracked", "set without model.init_from");
  for (int i = 0; i < m.input_shape_size(); ++i)
    c.positive("model.input_shape[" + std::to_string(i) + "]", m.input_shape(i), kMaxFeatures);
  if (m.input_shape_size() > 3)
    c.fail("model.input_shape", "has " + std::to_string(m.input_shape_size()) +
                                    " dimensions; one sample is (features) or (channels, height, width)");
  for (int i = 0; i < m.layers_size(); ++i) check_layer(c, m.layers(i), i);
}

void check_optimizer(const Checker& c, const proto::OptimizerSpec& o) {
  c.positive("optimizer.lr", o.lr(), kMaxRate);
  c.non_negative("optimizer.weight_decay", o.weight_decay(), kMaxRate);
  if (o.rule_case() == proto::OptimizerSpec::RULE_NOT_SET)
    c.fail("optimizer", "set one of sgd, adamw, adam, rmsprop, lars, lamb");
  if (o.has_sgd()) {
    c.non_negative("optimizer.sgd.momentum", o.sgd().momentum(), 1.f);
    c.unit("optimizer.sgd.dampening", o.sgd().dampening(), /*closed_top=*/true);
    if (o.sgd().nesterov() && (o.sgd().momentum() <= 0.f || o.sgd().dampening() != 0.f))
      c.fail("optimizer.sgd.nesterov", "needs momentum > 0 and dampening 0");
  }
  if (o.has_adamw()) {
    const auto& a = o.adamw();
    if (a.has_beta1()) c.unit("optimizer.adamw.beta1", a.beta1(), /*closed_top=*/false);
    if (a.has_beta2()) c.unit("optimizer.adamw.beta2", a.beta2(), /*closed_top=*/false);
    if (a.has_eps()) c.positive("optimizer.adamw.eps", a.eps(), 1.f);
  }
  if (o.has_adam()) {
    const auto& a = o.adam();
    if (a.has_beta1()) c.unit("optimizer.adam.beta1", a.beta1(), /*closed_top=*/false);
    if (a.has_beta2()) c.unit("optimizer.adam.beta2", a.beta2(), /*closed_top=*/false);
    if (a.has_eps()) c.positive("optimizer.adam.eps", a.eps(), 1.f);
  }
  if (o.has_rmsprop()) {
    const auto& r = o.rmsprop();
    if (r.has_alpha()) c.unit("optimizer.rmsprop.alpha", r.alpha(), /*closed_top=*/false);
    if (r.has_eps()) c.positive("optimizer.rmsprop.eps", r.eps(), 1.f);
    c.non_negative("optimizer.rmsprop.momentum", r.momentum(), 1.f);
  }
  if (o.has_lars()) {
    c.non_negative("optimizer.lars.momentum", o.lars().momentum(), 1.f);
    if (o.lars().has_trust_coefficient())
      c.positive("optimizer.lars.trust_coefficient", o.lars().trust_coefficient(), 1.f);
  }
  if (o.has_lamb()) {
    const auto& l = o.lamb();
    if (l.has_beta1()) c.unit("optimizer.lamb.beta1", l.beta1(), /*closed_top=*/false);
    if (l.has_beta2()) c.unit("optimizer.lamb.beta2", l.beta2(), /*closed_top=*/false);
    if (l.has_eps()) c.positive("optimizer.lamb.eps", l.eps(), 1.f);
  }
}

void check_schedule(const Checker& c, const proto::ScheduleSpec& s) {
  if (!proto::ScheduleSpec::Interval_IsValid(s.interval()))
    c.fail("schedule.interval", "unknown value " + str(s.interval()) + " (known: EPOCH, STEP)");
  const bool per_step = s.interval() == proto::ScheduleSpec::STEP;
  const int64_t max_t = per_step ? kMaxSteps : kMaxEpochs;  // t counts steps or epochs
  if (s.has_step()) {
    c.positive("schedule.step.step_size", s.step().step_size(), max_t);
    c.positive("schedule.step.gamma", s.step().gamma(), kMaxRate);
  }
  if (s.has_cosine()) {
    c.positive("schedule.cosine.t_max", s.cosine().t_max(), max_t);
    c.non_negative("schedule.cosine.eta_min", s.cosine().eta_min(), kMaxRate);
  }
  if (s.has_linear()) {
    const auto& l = s.linear();
    if (l.has_start_factor()) c.unit("schedule.linear.start_factor", l.start_factor(), /*closed_top=*/true);
    if (l.has_end_factor()) c.unit("schedule.linear.end_factor", l.end_factor(), /*closed_top=*/true);
    if (l.has_total_iters()) c.positive("schedule.linear.total_iters", l.total_iters(), max_t);
    if (l.has_start_factor() && l.start_factor() == 0 && l.has_end_factor() && l.end_factor() == 0)
      c.fail("schedule.linear.end_factor", "0 with start_factor 0 holds the lr at 0 for the whole schedule");
  }
  if (s.has_polynomial()) {
    const auto& p = s.polynomial();
    if (p.has_total_iters()) c.positive("schedule.polynomial.total_iters", p.total_iters(), max_t);
    if (p.has_power()) c.positive("schedule.polynomial.power", p.power(), 100.f);
  }
  if (s.has_one_cycle()) {
    const auto& o = s.one_cycle();
    c.positive("schedule.one_cycle.total_steps", o.total_steps(), max_t);
    if (o.has_pct_start() && !(o.pct_start() > 0.0 && o.pct_start() < 1.0))
      c.fail("schedule.one_cycle.pct_start", "must be in (0, 1), got " + str(o.pct_start()));
    if (o.has_div_factor()) c.positive("schedule.one_cycle.div_factor", o.div_factor(), kMaxDivFactor);
    if (o.has_final_div_factor())
      c.positive("schedule.one_cycle.final_div_factor", o.final_div_factor(), kMaxDivFactor);
    if (!o.anneal_strategy().empty() && o.anneal_strategy() != "cos" && o.anneal_strategy() != "linear")
      c.fail("schedule.one_cycle.anneal_strategy", "must be \"cos\" or \"linear\", got " + quoted(o.anneal_strategy()));
    if (!o.has_cycle_momentum() || o.cycle_momentum())
      c.fail("schedule.one_cycle.cycle_momentum",
             std::string(o.has_cycle_momentum() ? "true is not supported" : "required") +
                 ": torch's default (true) also cycles SGD momentum / Adam beta1, which lockstep does not; "
                 "write cycle_momentum: false (torch OneCycleLR(..., cycle_momentum=False))");
    // The first phase ends at step pct_start * total_steps - 1; torch divides by that length.
    const double pct = o.has_pct_start() ? o.pct_start() : 0.3;
    if (pct * static_cast<double>(o.total_steps()) - 1.0 <= 0.0)
      c.fail("schedule.one_cycle.total_steps", str(o.total_steps()) + " is too few for pct_start " + str(pct) +
                                                   ": the warm-up phase must last more than one step");
  }
  c.non_negative("schedule.warmup_epochs", s.warmup_epochs(), kMaxEpochs);
  c.non_negative("schedule.warmup_steps", s.warmup_steps(), kMaxSteps);
  // torch LinearLR asks (0, 1]; 0 is allowed here (closed form, lockstep's lr_schedule.h).
  if (s.has_warmup_start_factor()) c.unit("schedule.warmup_start_factor", s.warmup_start_factor(), /*closed_top=*/true);
  if (s.warmup_epochs() > 0 && per_step)
    c.fail("schedule.warmup_epochs", "counts epochs, but interval is STEP: use warmup_steps");
  if (s.has_one_cycle() && (s.warmup_epochs() > 0 || s.warmup_steps() > 0))
    c.fail(s.warmup_steps() > 0 ? "schedule.warmup_steps" : "schedule.warmup_epochs",
           "one_cycle warms up by itself (pct_start); drop the extra warm-up");
  if (s.warmup_steps() > 0 && !per_step)
    c.fail("schedule.warmup_steps", "counts optimizer steps: needs interval: STEP");
}

void check_clip(const Checker& c, const proto::JobSpec& job) {
  const proto::GradClipSpec& g = job.clip_grad();
  c.non_negative("clip_grad.max_norm", g.max_norm(), kMaxClip);
  c.non_negative("clip_grad.clip_value", g.clip_value(), kMaxClip);
  if (g.has_norm_type()) {
    const double p = g.norm_type();
    if (!(p >= 1.0)) c.fail("clip_grad.norm_type", "must be at least 1, or inf, got " + str(p));
    if (g.max_norm() == 0) c.fail("clip_grad.norm_type", "set without clip_grad.max_norm");
  }
  if (job.has_clip_grad() && g.max_norm() == 0 && g.clip_value() == 0)
    c.fail("clip_grad", "clips nothing: set max_norm (clip_grad_norm_) or clip_value (clip_grad_value_)");
}

void check_distributed(const Checker& c, const proto::DistributedSpec& d) {
  if (!d.backend().empty() && d.backend() != "mpi" && d.backend() != "self")
    c.fail("distributed.backend", "unknown backend " + quoted(d.backend()) + " (known: mpi, self)");
  if (!proto::DistributedSpec::DropoutKeying_IsValid(d.dropout_keying()))
    c.fail("distributed.dropout_keying", "unknown value " + str(d.dropout_keying()));
  if (!proto::DistributedSpec::Remainder_IsValid(d.remainder()))
    c.fail("distributed.remainder", "unknown value " + str(d.remainder()));
  if (!proto::DistributedSpec::EvalBuffers_IsValid(d.eval_buffers()))
    c.fail("distributed.eval_buffers", "unknown value " + str(d.eval_buffers()));
  if (!proto::DistributedSpec::CommHook_IsValid(d.comm_hook()))
    c.fail("distributed.comm_hook", "unknown value " + str(d.comm_hook()) +
                                        " (known: ALLREDUCE_HOOK, BF16_COMPRESS_HOOK)");
  // At least about 1 KiB: a smaller size rounds to an empty bucket.
  if (d.has_bucket_mb()) c.in_range("distributed.bucket_mb", d.bucket_mb(), kMinBucketMb, kMaxBucketMb);
  if (d.has_chunk_mb()) c.in_range("distributed.chunk_mb", d.chunk_mb(), kMinBucketMb, kMaxBucketMb);
  if (d.has_collective_timeout_s())
    c.in_range("distributed.collective_timeout_s", d.collective_timeout_s(), kMinSeconds, kMaxSeconds);
}

void check_phases(const Checker& c, const proto::PhasePlan& p) {
  if (p.has_eval_every()) c.in_range("phases.eval_every", p.eval_every(), int64_t{1}, kMaxEpochs);
  if (p.has_checkpoint_every()) c.non_negative("phases.checkpoint_every", p.checkpoint_every(), kMaxEpochs);
  if (p.has_keep_checkpoints()) c.in_range("phases.keep_checkpoints", p.keep_checkpoints(), 1, kMaxKeep);
}

void check_control(const Checker& c, const proto::ControlSpec& s) {
  if (s.has_heartbeat_interval_s())
    c.in_range("control.heartbeat_interval_s", s.heartbeat_interval_s(), kMinSeconds, kMaxHeartbeatS);
  if (s.has_heartbeat_timeout_s())
    c.in_range("control.heartbeat_timeout_s", s.heartbeat_timeout_s(), kMinSeconds, kMaxSeconds);
  if (s.has_startup_timeout_s())
    c.in_range("control.startup_timeout_s", s.startup_timeout_s(), 1.0f, kMaxSeconds);
  if (s.has_straggler_factor())
    c.in_range("control.straggler_factor", s.straggler_factor(), 1.0f, 1000.0f, /*lo_open=*/true);
  if (s.has_straggler_window_steps())
    c.in_range("control.straggler_window_steps", s.straggler_window_steps(), 1, 10000);
  const float interval = s.has_heartbeat_interval_s() ? s.heartbeat_interval_s() : 0.5f;
  const float timeout = s.has_heartbeat_timeout_s() ? s.heartbeat_timeout_s() : 10.0f;
  if (interval > 0 && timeout > 0 && timeout < 2 * interval)
    c.fail("control.heartbeat_timeout_s", "must be at least twice control.heartbeat_interval_s (" +
                                              std::to_string(interval) + " s), got " + std::to_string(timeout));
}

// Unset (empty) means the default runs/<name>; a set value must name a directory.
void check_run_dir(const Checker& c, const std::string& dir) {
  if (dir.empty()) return;
  if (dir.find('\0') != std::string::npos) c.fail("run_dir", "contains a NUL byte: " + quoted(dir));
  if (dir.find_first_not_of(" \t\r\n\v\f") == std::string::npos)
    c.fail("run_dir", "is blank (" + quoted(dir) + "); leave it unset for the default runs/<name>");
}

void check_eval(const Checker& c, const proto::JobSpec& job) {
  const int64_t classes = model_outputs(job);  // 0: not known before the model is built
  const auto& k = job.eval().top_k();
  for (int i = 0; i < k.size(); ++i) {
    const std::string at = "eval.top_k[" + std::to_string(i) + "]";
    c.positive(at, static_cast<int64_t>(k[i]), kMaxFeatures);
    if (classes > 0 && k[i] > classes)
      c.fail(at, "k " + std::to_string(k[i]) + " exceeds the model's " + std::to_string(classes) +
                     " classes (allowed: [1, " + std::to_string(classes) + "])");
    for (int j = 0; j < i; ++j)
      if (k[j] == k[i]) c.fail(at, "k " + std::to_string(k[i]) + " is listed twice (also eval.top_k[" + std::to_string(j) + "])");
  }
}

void check_trace(const Checker& c, const proto::JobSpec& job) {
  const proto::TraceSpec& t = job.trace();
  if (t.has_max_events()) c.positive("trace.max_events", t.max_events(), kMaxTraceEvents);
  if (!t.has_first_step() && t.last_step() == 0) return;  // off
  const int64_t first = t.has_first_step() ? t.first_step() : 1;
  c.positive("trace.first_step", first, kMaxSteps);
  if (t.last_step() == 0) c.fail("trace.first_step", "set without trace.last_step, the range's last step");
  c.in_range("trace.last_step", t.last_step(), first, kMaxSteps);
  if (t.last_step() - first >= kMaxTraceSteps)
    c.fail("trace.last_step", "the range " + std::to_string(first) + ":" + std::to_string(t.last_step()) + " holds " +
                                  std::to_string(t.last_step() - first + 1) + " steps; at most " +
                                  std::to_string(kMaxTraceSteps) + " are traced at once");
}

}  // namespace

// Every string field, at any depth, valid UTF-8 without NUL: they travel in protobuf messages
// (which refuse other bytes at run time) and become paths.
void check_strings(const Checker& c, const google::protobuf::Message& m, const std::string& prefix) {
  const auto* r = m.GetReflection();
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  r->ListFields(m, &fields);
  for (const auto* f : fields) {
    const std::string name = prefix + f->name();
    const int n = f->is_repeated() ? r->FieldSize(m, f) : 1;
    for (int i = 0; i < n; ++i) {
      const std::string at = f->is_repeated() ? name + "[" + std::to_string(i) + "]" : name;
      if (f->type() == google::protobuf::FieldDescriptor::TYPE_MESSAGE) {
        check_strings(c, f->is_repeated() ? r->GetRepeatedMessage(m, f, i) : r->GetMessage(m, f), at + ".");
      } else if (f->type() == google::protobuf::FieldDescriptor::TYPE_STRING) {
        const std::string v = f->is_repeated() ? r->GetRepeatedString(m, f, i) : r->GetString(m, f);
        if (v.find('\0') != std::string::npos) c.fail(at, "contains a NUL byte: " + quoted(v));
        if (!valid_utf8(v)) c.fail(at, "is not valid UTF-8: " + quoted(v));
      }
    }
  }
}

proto::JobSpec parse_job(const std::string& path) {
  std::error_code ec;
  // An ifstream opens a directory and reads nothing: say what it is instead of "set model...".
  LOCKSTEP_FAIL_IF(std::filesystem::is_directory(path, ec)) << path << ": is a directory, not a job file";
  // /dev/zero or a FIFO would be read without end.
  checkpoint_io::check_input_file("", path);
  const auto size = std::filesystem::file_size(path, ec);
  LOCKSTEP_FAIL_IF(!ec && size > kMaxJobFileBytes)
      << path << ": is " << size << " bytes long; a job file is at most " << kMaxJobFileBytes << " bytes";
  std::ifstream in(path);
  LOCKSTEP_FAIL_IF(!in) << "cannot open job file " << path;
  std::stringstream text;
  text << in.rdbuf();
  proto::JobSpec job;
  const std::string source = text.str();
  Collector errors(path, source);
  google::protobuf::TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  LOCKSTEP_FAIL_IF(!parser.ParseFromString(source, &job))
      << (errors.first().empty() ? path + ": cannot parse job file" : errors.first());
  return job;
}

proto::JobSpec load_job(const std::string& path) {
  proto::JobSpec job = parse_job(path);
  validate_job(job, path);
  return job;
}

void validate_job(const proto::JobSpec& job, const std::string& path) {
  const Checker c(path);
  check_strings(c, job, "");
  check_model(c, job.model());
  const auto& d = job.data();
  if (d.dir().empty()) c.fail("data.dir", "required");
  if (d.has_mean()) c.in_range("data.mean", d.mean(), -kMaxNorm, kMaxNorm);
  if (d.has_std()) c.in_range("data.std", d.std(), kMinStd, kMaxNorm, /*lo_open=*/false);
  c.non_negative("data.augment.random_crop_padding", d.augment().random_crop_padding(), kMaxCropPadding);
  if (d.has_prefetch_batches()) c.non_negative("data.prefetch_batches", d.prefetch_batches(), kMaxPrefetch);
  c.positive("epochs", job.epochs(), kMaxEpochs);
  c.positive("batch_size", job.batch_size(), kMaxBatch);
  c.non_negative("eval_batch_size", job.eval_batch_size(), kMaxBatch);
  c.non_negative("threads", job.threads(), kMaxThreads);
  // seed: every uint64 value is a seed.
  if (!proto::JobSpec::NonFinite_IsValid(job.on_nonfinite()))
    c.fail("on_nonfinite", "unknown value " + str(job.on_nonfinite()));
  if (!proto::JobSpec::Precision_IsValid(job.precision()))
    c.fail("precision", "unknown value " + str(job.precision()) + " (known: FP32, BF16)");
  check_optimizer(c, job.optimizer());
  check_schedule(c, job.schedule());
  if (job.has_accumulate_steps()) c.in_range("accumulate_steps", job.accumulate_steps(), int64_t{1}, kMaxAccumulate);
  check_clip(c, job);
  check_distributed(c, job.distributed());
  check_phases(c, job.phases());
  check_control(c, job.control());
  check_run_dir(c, job.run_dir());
  check_eval(c, job);
  check_trace(c, job);
}

void check_job_for_launch(const proto::JobSpec& job, const std::string& path, int world_size) {
  LOCKSTEP_CHECK(world_size >= 1) << "world size " << world_size;
  validate_job(job, path);
  const Checker c(path);
  const std::string n = std::to_string(job.batch_size()), w = std::to_string(world_size);
  // batch_size is the global batch, split evenly: every rank needs the same, non-zero share.
  if (job.batch_size() < world_size)
    c.fail("batch_size", "global batch " + n + " is smaller than the world size " + w +
                             " (each rank needs at least one sample)");
  if (job.batch_size() % world_size != 0)
    c.fail("batch_size", "global batch " + n + " is not a multiple of the world size " + w +
                             " (it is split evenly across ranks)");
  if (world_size > 1 && job.distributed().backend() == "self")
    c.fail("distributed.backend", "\"self\" runs a single rank, but the world size is " + w);
  // This host's CPU; a worker on another host checks its own as it builds its replica.
  if (const std::string why = precision_unsupported(precision_of(job)); !why.empty()) c.fail("precision", why);
  try {
    BuiltModel built = build_model(job);
    load_init_from(job, *built.model, {});  // keys, shapes and dtypes, before any worker starts
  } catch (const Error& e) {
    throw Error(path + ": " + one_line(e.what()));
  }
  const DataFacts facts = check_data(job, path);  // last: it reads files, the checks above only the job
  // The sampler steps of an epoch (the same on every rank) against accumulate_steps and a
  // schedule's horizon.
  try {
    check_schedule_horizon(job, DistributedSampler(facts.train.size, sampler_options(job, 0, world_size)).num_steps());
  } catch (const Error& e) {
    throw Error(path + ": " + one_line(e.what()));
  }
}

Precision precision_of(const proto::JobSpec& job) {
  return job.precision() == proto::JobSpec::BF16 ? Precision::kBF16 : Precision::kFP32;
}

std::vector<int64_t> eval_top_k(const proto::JobSpec& job) {
  if (job.eval().top_k_size() > 0) return {job.eval().top_k().begin(), job.eval().top_k().end()};
  if (model_outputs(job) > 5) return {5};
  return {};
}

Heartbeat heartbeat_of(const proto::JobSpec& job) {
  Heartbeat h;
  if (job.control().has_heartbeat_interval_s()) h.interval_s = job.control().heartbeat_interval_s();
  if (job.control().has_heartbeat_timeout_s()) h.timeout_s = job.control().heartbeat_timeout_s();
  if (job.control().has_startup_timeout_s()) h.startup_s = job.control().startup_timeout_s();
  if (job.control().has_straggler_factor()) h.straggler_factor = job.control().straggler_factor();
  if (job.control().has_straggler_window_steps()) h.straggler_window_steps = job.control().straggler_window_steps();
  return h;
}

}  // namespace lockstep
