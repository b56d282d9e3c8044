// POSIX file helpers for checkpoints: whole-file writes that are fsynced and checked at every call
// (short writes, EINTR, errors reported late by fsync or close), directory fsync, whole-file
// reads. Errors are lockstep::Error naming the file and the OS error ("writing model.pb: No space
// left on device"); the caller prefixes the checkpoint.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace lockstep::checkpoint_io {

// Creates `name` in the directory `dir` (must not exist), writes `bytes`, fsyncs and closes it.
void write_file_synced(const std::string& dir, const std::string& name, std::string_view bytes);

// fsyncs the directory itself, so entries created, removed or renamed in it are durable.
// `label` names it in the error.
void sync_dir(const std::string& dir, const std::string& label);

// The whole file `dir`/`name`; std::nullopt when it does not exist. Opened without blocking: a FIFO
// (or any file that is not regular) is refused naming it, never waited on.
std::optional<std::string> read_file(const std::string& dir, const std::string& name);

// Removes a directory tree; errors are returned as text ("" when it is gone).
std::string remove_tree(const std::string& path);

}  // namespace lockstep::checkpoint_io
