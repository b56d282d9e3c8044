// The safetensors format (see safetensors.h): header JSON through nlohmann::json, every rule checked.
#include "runtime/safetensors/safetensors.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "runtime/check.h"
#include "runtime/checkpoint/posix_file.h"
#include "runtime/checkpoint/user_file.h"

namespace lockstep::safetensors {
namespace {

using json = nlohmann::ordered_json;

constexpr const char* kMetadataKey = "__metadata__";

std::string json_quoted(std::string_view s) { return nlohmann::json(std::string(s)).dump(); }

std::string shape_text(const Shape& s) {
  std::string t = "[";
  for (size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
  return t + "]";
}

// numel * size, or nullopt on overflow past int64.
std::optional<uint64_t> byte_count(const Shape& shape, int size) {
  uint64_t n = static_cast<uint64_t>(size);
  for (int64_t d : shape) {
    if (d != 0 && n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / static_cast<uint64_t>(d))
      return std::nullopt;
    n *= static_cast<uint64_t>(d);
  }
  return n;
}

// nlohmann's what() starts "[json.exception.parse_error.101] "; the rest is the useful part.
std::string json_reason(const std::exception& e) {
  std::string w = e.what();
  if (w.rfind("[json.exception.", 0) == 0) {
    const size_t close = w.find("] ");
    if (close != std::string::npos) w = w.substr(close + 2);
  }
  return w;
}

struct Range {
  uint64_t begin, end;
  size_t index;  // into File::tensors
};

}  // namespace

int dtype_size(std::string_view d) {
  if (d == "F64" || d == "I64" || d == "U64") return 8;
  if (d == "F32" || d == "I32" || d == "U32") return 4;
  if (d == "F16" || d == "BF16" || d == "I16" || d == "U16") return 2;
  if (d == "I8" || d == "U8" || d == "BOOL" || d == "F8_E4M3" || d == "F8_E5M2") return 1;
  return 0;
}

std::string encode(const File& f, const std::string& file) {
  json header = json::object();
  if (!f.metadata.empty()) {
    json m = json::object();
    for (const auto& [k, v] : f.metadata) m[k] = v;
    header[kMetadataKey] = m;
  }
  uint64_t offset = 0;
  std::set<std::string> seen;
  for (const Entry& e : f.tensors) {
    const std::string key = json_quoted(e.name);
    LOCKSTEP_FAIL_IF(e.name == kMetadataKey || !seen.insert(e.name).second)
        << file << ": key " << key << " is given twice or is reserved";
    const int size = dtype_size(e.dtype);
    LOCKSTEP_FAIL_IF(size == 0) << file << ": key " << key << ": unknown dtype " << json_quoted(e.dtype);
    const auto need = byte_count(e.shape, size);
    LOCKSTEP_FAIL_IF(!need || *need != e.bytes.size())
        << file << ": key " << key << ": " << e.bytes.size() << " bytes for " << e.dtype << " shape "
        << shape_text(e.shape);
    header[e.name] = {{"dtype", e.dtype}, {"shape", e.shape}, {"data_offsets", {offset, offset + e.bytes.size()}}};
    offset += e.bytes.size();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // the buffer starts 8-byte aligned
  std::string out(8, '\0');
  const uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  out += text;
  out.reserve(out.size() + offset);
  for (const Entry& e : f.tensors) out += e.bytes;
  return out;
}

File decode(std::string_view bytes, const std::string& file) {
  LOCKSTEP_FAIL_IF(bytes.size() < 8) << file << ": truncated: " << bytes.size()
                                     << " bytes, less than the 8-byte header size";
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[i]);
  LOCKSTEP_FAIL_IF(n > kMaxHeaderBytes) << file << ": header size " << n << " bytes exceeds the format's limit of "
                                        << kMaxHeaderBytes;
  LOCKSTEP_FAIL_IF(n > bytes.size() - 8) << file << ": header size " << n << " bytes runs past the end of the file ("
                                         << bytes.size() << " bytes)";
  const std::string_view text = bytes.substr(8, n);
  LOCKSTEP_FAIL_IF(text.empty() || text[0] != '{') << file << ": the header does not start with '{'";
  // Duplicate top-level keys: JSON parsers keep one silently, so two tensors could alias; refused.
  std::set<std::string> keys;
  std::string duplicate;
  auto on_event = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth == 1 && event == json::parse_event_t::key && !keys.insert(parsed.get<std::string>()).second)
      duplicate = parsed.get<std::string>();
    return true;
  };
  json header;
  try {
    header = json::parse(text.begin(), text.end(), on_event);
  } catch (const json::exception& e) {
    LOCKSTEP_FAIL_IF(true) << file << ": the header is not valid JSON: " << json_reason(e);
  }
  LOCKSTEP_FAIL_IF(!duplicate.empty()) << file << ": key " << json_quoted(duplicate) << " appears twice in the header";
  LOCKSTEP_FAIL_IF(!header.is_object()) << file << ": the header is not a JSON object";

  const uint64_t buffer = bytes.size() - 8 - n;
  File f;
  std::vector<Range> ranges;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string key = json_quoted(it.key());
    const json& v = it.value();
    if (it.key() == kMetadataKey) {
      LOCKSTEP_FAIL_IF(!v.is_object()) << file << ": " << kMetadataKey << " is " << v.dump() << ", not an object";
      for (auto m = v.begin(); m != v.end(); ++m) {
        LOCKSTEP_FAIL_IF(!m.value().is_string())
            << file << ": " << kMetadataKey << " key " << json_quoted(m.key()) << " is " << m.value().dump()
            << ", not a string";
        f.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    LOCKSTEP_FAIL_IF(!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
        << file << ": key " << key << ": " << v.dump() << " is not {\"dtype\", \"shape\", \"data_offsets\"}";
    for (auto field = v.begin(); field != v.end(); ++field)
      LOCKSTEP_FAIL_IF(field.key() != "dtype" && field.key() != "shape" && field.key() != "data_offsets")
          << file << ": key " << key << ": unknown field " << json_quoted(field.key());
    const json& dtype = v["dtype"];
    LOCKSTEP_FAIL_IF(!dtype.is_string() || dtype_size(dtype.get<std::string>()) == 0)
        << file << ": key " << key << ": unknown dtype " << dtype.dump();
    Entry e{.name = it.key(), .dtype = dtype.get<std::string>(), .shape = {}, .bytes = {}};
    const json& shape = v["shape"];
    LOCKSTEP_FAIL_IF(!shape.is_array()) << file << ": key " << key << ": shape " << shape.dump() << " is not a list";
    for (const json& d : shape) {
      LOCKSTEP_FAIL_IF(!d.is_number_unsigned() ||
                       d.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
          << file << ": key " << key << ": shape " << shape.dump() << " holds " << d.dump()
          << ", not a size";
      e.shape.push_back(d.get<int64_t>());
    }
    const json& off = v["data_offsets"];
    LOCKSTEP_FAIL_IF(!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() ||
                     !off[1].is_number_unsigned())
        << file << ": key " << key << ": data_offsets " << off.dump() << " is not [begin, end]";
    const uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
    LOCKSTEP_FAIL_IF(end < begin) << file << ": key " << key << ": data_offsets " << off.dump()
                                  << " end before begin";
    LOCKSTEP_FAIL_IF(end > buffer) << file << ": key " << key << ": data_offsets " << off.dump()
                                   << " run past the end of the data (" << buffer << " bytes)";
    const auto need = byte_count(e.shape, dtype_size(e.dtype));
    LOCKSTEP_FAIL_IF(!need || *need != end - begin)
        << file << ": key " << key << ": data_offsets " << off.dump() << " hold " << end - begin << " bytes, "
        << e.dtype << " shape " << shape_text(e.shape) << " needs "
        << (need ? std::to_string(*need) : std::string("more than 2^63"));
    ranges.push_back({begin, end, f.tensors.size()});
    f.tensors.push_back(std::move(e));
  }
  // The ranges must tile the buffer: sorted by begin, each starts where the previous ended.
  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  uint64_t at = 0;
  const std::string* prev = nullptr;
  for (const Range& r : ranges) {
    const std::string& name = f.tensors[r.index].name;
    LOCKSTEP_FAIL_IF(r.begin < at) << file << ": key " << json_quoted(name) << ": data_offsets [" << r.begin << ", "
                                   << r.end << "] overlap key " << json_quoted(*prev) << " (which ends at " << at << ")";
    LOCKSTEP_FAIL_IF(r.begin > at) << file << ": key " << json_quoted(name) << ": data_offsets [" << r.begin << ", "
                                   << r.end << "] leave bytes [" << at << ", " << r.begin
                                   << ") of the data unused (a hole)";
    at = r.end;
    prev = &name;
  }
  LOCKSTEP_FAIL_IF(at != buffer) << file << ": the tensors cover " << at << " bytes of data, but the file holds "
                                 << buffer << " after the header";
  File sorted;
  sorted.metadata = std::move(f.metadata);
  const std::string_view data = bytes.substr(8 + n);
  for (const Range& r : ranges) {
    Entry& e = f.tensors[r.index];
    e.bytes.assign(data.substr(r.begin, r.end - r.begin));
    sorted.tensors.push_back(std::move(e));
  }
  return sorted;
}

void write_file(const std::string& path, const File& f) {
  const std::string bytes = encode(f, path);
  const std::filesystem::path p(path);
  std::string dir = p.parent_path().string();
  if (dir.empty()) dir = ".";
  const std::string tmp = "." + p.filename().string() + ".tmp-" + std::to_string(::getpid());
  std::error_code ec;
  // Errors name the target and its directory, never the temporary file (Note [user-named outputs]).
  LOCKSTEP_FAIL_IF(!std::filesystem::is_directory(dir, ec)) << path << ": no such directory: " << dir;
  const std::string kind = checkpoint_io::non_regular_kind(path);
  LOCKSTEP_FAIL_IF(!kind.empty()) << path << ": is " << kind << "; give the name of a regular file to write";
  std::filesystem::remove(dir + "/" + tmp, ec);  // a crashed earlier try of this pid
  try {
    checkpoint_io::write_file_synced(dir, tmp, bytes);
    std::filesystem::rename(dir + "/" + tmp, path);
    checkpoint_io::sync_dir(dir, dir);
  } catch (const std::filesystem::filesystem_error& e) {
    std::filesystem::remove(dir + "/" + tmp, ec);
    throw Error(path + ": renaming into place: " + e.code().message());
  } catch (const Error& e) {
    std::filesystem::remove(dir + "/" + tmp, ec);
    std::string why = e.what();  // "creating .x.tmp-123: Permission denied" -> "Permission denied"
    if (const size_t at = why.find(tmp + ": "); at != std::string::npos) why = why.substr(at + tmp.size() + 2);
    throw Error(path + ": cannot write it: " + why);
  }
}

File read_file(const std::string& path) {
  const std::filesystem::path p(path);
  std::string dir = p.parent_path().string();
  if (dir.empty()) dir = ".";
  std::optional<std::string> bytes;
  try {
    bytes = checkpoint_io::read_file(dir, p.filename().string());
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
  LOCKSTEP_FAIL_IF(!bytes) << path << ": no such file";
  return decode(*bytes, path);
}

}  // namespace lockstep::safetensors
