// read_checkpoint, list_checkpoints, latest_valid_checkpoint: every file is checked against the
// MANIFEST (size, CRC-32) before anything is parsed, so damage is reported as damage, naming the
// file, and never as a confusing parse or shape error.
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>

#include "runtime/check.h"
#include "runtime/checkpoint/checkpoint.h"
#include "runtime/checkpoint/checkpoint_format.h"
#include "runtime/checkpoint/posix_file.h"

namespace lockstep {
namespace {

namespace fmt = checkpoint_format;
namespace io = checkpoint_io;

std::string hex(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", v);
  return buf;
}

// The verified bytes of every file MANIFEST lists, by name. Errors name the file only.
std::map<std::string, std::string> verified_files(const std::string& dir, const proto::Manifest& m) {
  std::map<std::string, std::string> files;
  for (const proto::ManifestEntry& e : m.files()) {
    const std::string& f = e.file();
    LOCKSTEP_FAIL_IF(f.empty() || f.find('/') != std::string::npos || f == fmt::kManifestFile)
        << fmt::kManifestFile << ": lists an invalid file name '" << f << "'";
    std::optional<std::string> bytes = io::read_file(dir, f);
    LOCKSTEP_FAIL_IF(!bytes) << f << ": missing (MANIFEST lists it, " << e.size() << " bytes)";
    LOCKSTEP_FAIL_IF(bytes->size() < e.size())
        << f << ": truncated: size " << bytes->size() << ", manifest says " << e.size();
    LOCKSTEP_FAIL_IF(bytes->size() > e.size())
        << f << ": too long: size " << bytes->size() << ", manifest says " << e.size();
    const uint32_t crc = fmt::crc32_of(*bytes);
    LOCKSTEP_FAIL_IF(crc != e.crc32()) << f << ": CRC mismatch: content has crc32 " << hex(crc)
                                       << ", manifest says " << hex(e.crc32());
    files[f] = std::move(*bytes);
  }
  for (const char* f : {fmt::kStateFile, fmt::kModelFile, fmt::kOptimizerFile})
    LOCKSTEP_FAIL_IF(!files.count(f)) << f << ": missing from MANIFEST";
  return files;
}

Checkpoint load(const std::string& dir) {
  struct stat st {};
  LOCKSTEP_FAIL_IF(::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) << "no such directory";
  const std::optional<std::string> manifest_bytes = io::read_file(dir, fmt::kManifestFile);
  LOCKSTEP_FAIL_IF(!manifest_bytes) << fmt::kManifestFile << ": missing (an incomplete checkpoint)";
  const proto::Manifest m = fmt::decode_manifest(*manifest_bytes);
  const std::string name = std::filesystem::path(dir).filename().string();
  const std::optional<uint64_t> dir_step = fmt::parse_dir_name(name);
  LOCKSTEP_FAIL_IF(dir_step && *dir_step != m.step())
      << fmt::kManifestFile << ": step " << m.step() << ", but the directory is " << name;

  std::map<std::string, std::string> files = verified_files(dir, m);
  Checkpoint c;
  LOCKSTEP_FAIL_IF(!c.state.ParseFromString(files[fmt::kStateFile]))
      << fmt::kStateFile << ": unparsable (not a CheckpointState)";
  LOCKSTEP_FAIL_IF(c.state.step() != m.step())
      << fmt::kStateFile << ": step " << c.state.step() << ", MANIFEST says " << m.step();
  c.model = fmt::decode_tensors(files[fmt::kModelFile], fmt::kModelFile);
  files.erase(fmt::kModelFile);
  c.optimizer = fmt::decode_tensors(files[fmt::kOptimizerFile], fmt::kOptimizerFile);
  if (files.count(fmt::kRankBuffersFile))
    c.rank_buffers = fmt::decode_tensors(files[fmt::kRankBuffersFile], fmt::kRankBuffersFile);
  return c;
}

}  // namespace

Checkpoint read_checkpoint(const std::string& dir) {
  try {
    return load(dir);
  } catch (const Error& e) {
    throw Error("checkpoint " + dir + ": " + e.what());
  }
}

std::vector<std::string> list_checkpoints(const std::string& run_dir) {
  const std::string root = run_dir + "/checkpoints";
  std::vector<std::pair<uint64_t, std::string>> found;
  std::error_code ec;
  std::filesystem::directory_iterator it(root, ec);
  if (ec == std::errc::no_such_file_or_directory) return {};
  LOCKSTEP_FAIL_IF(ec) << "listing checkpoints in " << root << ": " << ec.message();
  for (const auto& e : it) {
    const std::string name = e.path().filename().string();
    const std::optional<uint64_t> step = fmt::parse_dir_name(name);  // *.tmp-* never parse
    if (!step) continue;
    // A writer renames a checkpoint into its final name only once MANIFEST is in it, so one
    // without MANIFEST is damaged, not in progress: it is listed, and reading it says so.
    found.emplace_back(*step, root + "/" + name);
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::string> dirs;
  for (auto& [step, dir] : found) dirs.push_back(std::move(dir));
  return dirs;
}

std::optional<std::pair<std::string, Checkpoint>> latest_valid_checkpoint(
    const std::string& run_dir, const std::function<void(const std::string&)>& warn) {
  for (const std::string& dir : list_checkpoints(run_dir)) {
    try {
      return std::make_pair(dir, load(dir));
    } catch (const Error& e) {
      if (warn) warn("checkpoint " + dir + " is damaged (" + e.what() + "); trying the previous one");
    }
  }
  return std::nullopt;
}

}  // namespace lockstep
