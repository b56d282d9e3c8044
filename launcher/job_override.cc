// --set PATH=VALUE: the field found by protobuf reflection, the value parsed by TextFormat as a
// one-field snippet of the field's parent message, then merged in place of the old value.
#include "launcher/job_override.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <algorithm>
#include <cctype>

#include "launcher/quoted.h"

namespace lockstep {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

// The argument as typed when it is plain text, else quoted (a message stays one line).
std::string shown(const std::string& arg) {
  const bool plain = std::all_of(arg.begin(), arg.end(), [](unsigned char c) { return c >= 0x20 && c < 0x7f; });
  return plain ? arg : quoted(arg);
}

// The parser's first error, without the line:column of the one-line snippet.
class FirstError : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int, int, const std::string& message) override {
    if (first_.empty()) first_ = shown(message);
  }
  void AddWarning(int, int, const std::string&) override {}
  const std::string& first() const { return first_; }

 private:
  std::string first_;
};

std::string known_fields(const Descriptor* d) {
  std::string known;
  for (int i = 0; i < d->field_count(); ++i) known += (i ? ", " : "") + d->field(i)->name();
  return known;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

// One component of a path: "layers" or "layers[2]" (index -1: none).
struct Step {
  std::string name;
  int64_t index = -1;
};

Step parse_step(const std::string& arg, const std::string& part) {
  Step s;
  const auto open = part.find('[');
  s.name = part.substr(0, open);
  const auto fail = [&] { LOCKSTEP_FAIL_IF(true) << "--set " << shown(arg) << ": bad field path component " << quoted(part); };
  if (s.name.empty()) fail();
  if (open == std::string::npos) return s;
  if (part.back() != ']' || part.size() - open < 3) fail();
  const std::string digits = part.substr(open + 1, part.size() - open - 2);
  if (digits.size() > 9 || !std::all_of(digits.begin(), digits.end(), [](unsigned char c) { return std::isdigit(c); }))
    fail();
  s.index = std::stoll(digits);
  return s;
}

void apply_one(proto::JobSpec& job, const std::string& arg) {
  const auto eq = arg.find('=');
  LOCKSTEP_FAIL_IF(eq == std::string::npos || eq == 0)
      << "--set " << shown(arg) << ": expected FIELD=VALUE, e.g. --set optimizer.lr=0.1";
  const std::string path = arg.substr(0, eq), value = arg.substr(eq + 1);
  std::vector<std::string> parts;
  for (size_t b = 0;;) {
    const size_t e = path.find('.', b);
    parts.push_back(path.substr(b, e - b));
    if (e == std::string::npos) break;
    b = e + 1;
  }
  Message* msg = &job;
  std::string where;  // the path so far, for messages: "optimizer", "model.layers[2]"
  for (size_t i = 0; i < parts.size(); ++i) {
    const Step step = parse_step(arg, parts[i]);
    const Descriptor* d = msg->GetDescriptor();
    const Reflection* r = msg->GetReflection();
    const FieldDescriptor* f = d->FindFieldByName(step.name);
    LOCKSTEP_FAIL_IF(!f) << "--set " << shown(arg) << ": " << (where.empty() ? "the job" : where) << " has no field "
                         << step.name << " (known: " << known_fields(d) << ")";
    const std::string at = (where.empty() ? "" : where + ".") + step.name;
    const bool last = i + 1 == parts.size();
    LOCKSTEP_FAIL_IF(step.index >= 0 && !(f->is_repeated() && f->message_type()))
        << "--set " << shown(arg) << ": " << at << " is not a list of messages; it takes no [index]";
    if (step.index >= 0) {
      const int size = r->FieldSize(*msg, f);
      LOCKSTEP_FAIL_IF(step.index >= size)
          << "--set " << shown(arg) << ": " << at << "[" << step.index << "] does not exist (" << at << " has " << size
          << " element" << (size == 1 ? "" : "s") << ")";
      msg = r->MutableRepeatedMessage(msg, f, static_cast<int>(step.index));
      where = at + "[" + std::to_string(step.index) + "]";
      if (last) {  // the element replaced whole: body as the job file's "layers { BODY }"
        const std::string body = trim(value);
        const std::string text = body.size() >= 2 && body.front() == '{' && body.back() == '}'
                                     ? body.substr(1, body.size() - 2)
                                     : body;
        FirstError errors;
        google::protobuf::TextFormat::Parser parser;
        parser.RecordErrorsTo(&errors);
        std::unique_ptr<Message> tmp(msg->New());
        LOCKSTEP_FAIL_IF(!parser.ParseFromString(text, tmp.get())) << "--set " << shown(arg) << ": " << errors.first();
        msg->CopyFrom(*tmp);
        return;
      }
      continue;
    }
    if (!last) {
      LOCKSTEP_FAIL_IF(!f->message_type())
          << "--set " << shown(arg) << ": " << at << " is not a message (" << f->type_name() << "); " << path
          << " names nothing";
      LOCKSTEP_FAIL_IF(f->is_repeated()) << "--set " << shown(arg) << ": " << at << " is a list; give an index, e.g. " << at
                                         << "[0]." << parts[i + 1];
      // Into a member of a oneof that holds another member (model.layers[1].dropout.p on a relu,
      // optimizer.adam.beta1 on sgd): refused, so a path never switches a layer's kind or the
      // optimizer's rule by the way; a whole-message value (FIELD={...}) switches it on purpose.
      if (const auto* oneof = f->containing_oneof()) {
        const FieldDescriptor* held = r->GetOneofFieldDescriptor(*msg, oneof);
        LOCKSTEP_FAIL_IF(held && held != f)
            << "--set " << shown(arg) << ": " << (where.empty() ? "the job" : where) << " holds " << held->name()
            << ", not " << f->name() << "; to replace it, set the whole " << oneof->name() << ": --set "
            << (where.empty() ? "" : where + ".") << f->name() << "={...}";
      }
      msg = r->MutableMessage(msg, f);
      where = at;
      continue;
    }
    // The last field: a one-field snippet of its parent, parsed alone, then put in place of the old.
    std::string text;
    const std::string v = trim(value);
    if (f->type() == FieldDescriptor::TYPE_STRING || f->type() == FieldDescriptor::TYPE_BYTES) {
      std::string items;
      if (f->is_repeated()) {  // comma-separated, as written
        for (size_t b = 0; !value.empty();) {
          const size_t e = value.find(',', b);
          items += (items.empty() ? "\"" : ", \"") + google::protobuf::CEscape(value.substr(b, e - b)) + "\"";
          if (e == std::string::npos) break;
          b = e + 1;
        }
        text = f->name() + ": [" + items + "]";
      } else if (v.size() >= 2 && v.front() == '"' && v.back() == '"') {
        // Written as the job file would hold it ("/data/x"): a text-format string literal, its
        // quotes not part of the value (escapes as in the file).
        text = f->name() + ": " + v;
      } else {
        text = f->name() + ": \"" + google::protobuf::CEscape(value) + "\"";
      }
    } else if (f->message_type()) {
      if (f->is_repeated() && !v.empty() && v.front() == '[') text = f->name() + ": " + v;
      else text = f->name() + " " + (!v.empty() && v.front() == '{' ? v : "{ " + v + " }");
    } else {
      if (f->enum_type()) {  // named like the job file does (the parser's own message is vaguer)
        std::string items = v.size() >= 2 && v.front() == '[' && v.back() == ']' ? v.substr(1, v.size() - 2) : v;
        for (size_t b = 0; !items.empty();) {
          const size_t e = items.find(',', b);
          const std::string item = trim(items.substr(b, e - b));
          const bool number = !item.empty() && std::all_of(item.begin() + (item[0] == '-'), item.end(),
                                                          [](unsigned char c) { return std::isdigit(c); });
          if (!number && !f->enum_type()->FindValueByName(item)) {
            std::string known;
            for (int k = 0; k < f->enum_type()->value_count(); ++k)
              known += (k ? ", " : "") + f->enum_type()->value(k)->name();
            LOCKSTEP_FAIL_IF(true) << "--set " << shown(arg) << ": " << at << ": unknown value " << item << " (known: " << known
                                   << ")";
          }
          if (e == std::string::npos) break;
          b = e + 1;
        }
      }
      text = f->name() + ": " + (f->is_repeated() && (v.empty() || v.front() != '[') ? "[" + v + "]" : v);
    }
    FirstError errors;
    google::protobuf::TextFormat::Parser parser;
    parser.RecordErrorsTo(&errors);
    std::unique_ptr<Message> tmp(msg->New());
    LOCKSTEP_FAIL_IF(!parser.ParseFromString(text, tmp.get()))
        << "--set " << shown(arg) << ": " << (errors.first().empty() ? "not a value of " + at : errors.first());
    // One field and nothing else (a value like "0.1 epochs: 5" would set two).
    std::vector<const FieldDescriptor*> set;
    tmp->GetReflection()->ListFields(*tmp, &set);
    LOCKSTEP_FAIL_IF(set.size() > 1 || (set.size() == 1 && set[0] != f))
        << "--set " << shown(arg) << ": " << quoted(value) << " is not one value of " << at;
    r->ClearField(msg, f);
    msg->MergeFrom(*tmp);
  }
}

}  // namespace

void apply_overrides(proto::JobSpec& job, const std::vector<std::string>& sets) {
  for (const std::string& s : sets) apply_one(job, s);
}

std::string blame_override(const std::string& message, const std::vector<std::string>& sets) {
  for (auto it = sets.rbegin(); it != sets.rend(); ++it) {  // the last --set of a field wins
    const std::string path = it->substr(0, it->find('='));
    // The field named as a whole: after ": " or ", " (a list of changed fields), before ':', ',',
    // ';', '[', '.', a space or the end.
    for (size_t at = message.find(path); at != std::string::npos; at = message.find(path, at + 1)) {
      const bool starts = at >= 2 && (message.compare(at - 2, 2, ": ") == 0 || message.compare(at - 2, 2, ", ") == 0);
      const size_t end = at + path.size();
      const bool ends = end == message.size() || std::string(":,;[. ").find(message[end]) != std::string::npos;
      if (starts && ends) return message + " (set by --set " + shown(*it) + ")";
    }
  }
  return message;
}

}  // namespace lockstep
