// `lockstep report RUN_DIR [-o FILE]`: one self-contained HTML page about a run (launcher/report/):
// the job, world size, state, final figures, charts, per-rank times, checkpoints. Reads the run
// directory only; works while the job runs, after it stopped, and before any metrics exist.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>

#include "launcher/cli.h"
#include "launcher/commands/commands.h"
#include "launcher/launch/exit_status.h"
#include "launcher/report/html_report.h"
#include "launcher/report/run_record.h"
#include "runtime/check.h"
#include "runtime/checkpoint/user_file.h"

namespace lockstep::commands {
namespace {

namespace fs = std::filesystem;

constexpr const char* kUsage = "lockstep report RUN_DIR [-o FILE] (default RUN_DIR/report.html)";

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  char buf[64] = {};
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", std::gmtime(&now));
  return buf;
}

// Written to FILE.tmp-<pid>, then renamed: a reader never sees half a page. The target was checked
// first (Note [user-named outputs]); errors name it, never the temporary file.
void write_file(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    const int err = errno;
    LOCKSTEP_FAIL_IF(!out) << "-o " << path << ": cannot write it: " << (err ? std::strerror(err) : "cannot create a file beside it");
    out << text;
    out.flush();
    if (!out) {
      std::error_code ec;
      fs::remove(tmp, ec);
      LOCKSTEP_FAIL_IF(true) << "-o " << path << ": cannot write it (disk full?)";
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
    LOCKSTEP_FAIL_IF(true) << "-o " << path << ": cannot write it: " << ec.message();
  }
}

int report_main(int argc, char** argv) {
  std::string run_dir, out;
  try {
    cli::CommandLine cl(std::string("usage: ") + kUsage + "\n", std::string("; usage: ") + kUsage);
    cl.refuse_empty_values();
    cl.text("-o,--output", out);
    cl.positional("run_dir", run_dir);
    if (!cl.parse(argc, argv)) return kExitDone;  // --help
    LOCKSTEP_FAIL_IF(run_dir.empty()) << "no run directory given; usage: " << kUsage;
    const report::RunRecord run = report::read_run(run_dir);
    if (out.empty()) out = run.dir + "/report.html";
    // The page never replaces what a run wrote, nor a device: report.html is the only own file it may replace.
    checkpoint_io::check_output_file("-o ", out, "report.html", {run.metrics_path});
    write_file(out, report::render_report(run, utc_now()));
    std::fprintf(stderr, "lockstep report: %s\n", out.c_str());
    return kExitDone;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lockstep: error: %s\n", e.what());
    return kExitBadInput;
  }
}

const Registrar reg("report", kUsage, &report_main);

}  // namespace
}  // namespace lockstep::commands
