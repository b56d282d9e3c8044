// CommandLine over CLI11 (launcher/cli.h): CLI11 splits the words into options, values and
// positionals; the value checks are ours (cli_number.h), run as CLI11 validators; CLI11's own
// complaints become our one-line errors.
#include "launcher/cli.h"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <utility>

#include "runtime/check.h"

namespace lockstep::cli {

CommandLine::CommandLine(std::string help, std::string hint)
    : app_(std::make_unique<CLI::App>()), help_(std::move(help)), hint_(std::move(hint)) {
  // Our --help prints the command's own text, and wins over any bad value given with it: it fires
  // while the words are read, before any validator runs.
  app_->set_help_flag();
  app_->add_flag_callback("-h,--help", [] { throw CLI::CallForHelp(); })->trigger_on_parse();
  // Unknown options and extra words are kept, in order, for parse() to name the first one.
  app_->allow_extras();
}

CommandLine::~CommandLine() = default;

std::string CommandLine::first_name(const std::string& names) const { return names.substr(0, names.find(',')); }

void CommandLine::value(const std::string& names, Take take) {
  // Exactly one word per occurrence, taken whatever it looks like ("-x", "-5"); every occurrence
  // kept (TakeAll) so a repeatable option sees each value in order.
  app_->add_option(names)
      ->each([option = first_name(names), refuse_empty = refuse_empty_, take = std::move(take)](const std::string& v) {
        LOCKSTEP_FAIL_IF(refuse_empty && v.empty()) << option << ": the value is empty";
        take(option, v);
      })
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
}

void CommandLine::text(const std::string& names, std::string& into) {
  value(names, [&into](const std::string&, const std::string& v) { into = v; });
}

void CommandLine::texts(const std::string& names, std::vector<std::string>& into) {
  value(names, [&into](const std::string&, const std::string& v) { into.push_back(v); });
}

void CommandLine::flag(const std::string& names, bool& into) {
  app_->add_flag(names, into)->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
}

void CommandLine::real(const std::string& names, double& into, double lo, double hi) {
  value(names, [&into, lo, hi](const std::string& option, const std::string& v) {
    into = real_number(option, v, lo, hi);
  });
}

void CommandLine::positional(const std::string& name, std::string& into) { app_->add_option(name, into); }

bool CommandLine::parse(int argc, char** argv) { return parse(std::vector<std::string>(argv, argv + argc)); }

bool CommandLine::parse(const std::vector<std::string>& args) {
  std::vector<std::string> last_first(args.rbegin(), args.rend());  // CLI11 reads them from the back
  try {
    app_->parse(last_first);
  } catch (const CLI::CallForHelp&) {
    std::fputs(help_.c_str(), stdout);
    std::fflush(stdout);
    return false;
  } catch (const CLI::ArgumentMismatch& e) {
    // Nothing was left for the last word, an option that takes a value.
    const std::string& last = args.empty() ? std::string() : args.back();
    const CLI::Option* o = !last.empty() && last[0] == '-' ? app_->get_option_no_throw(last) : nullptr;
    LOCKSTEP_FAIL_IF(o != nullptr && o->get_items_expected_min() > 0) << last << " needs a value";
    LOCKSTEP_FAIL_IF(true) << e.what() << hint_;
  } catch (const CLI::ParseError& e) {
    LOCKSTEP_FAIL_IF(true) << e.what() << hint_;
  }
  for (const std::string& w : app_->remaining()) {
    LOCKSTEP_FAIL_IF(!w.empty() && w[0] == '-') << "unknown option " << w << hint_;
    LOCKSTEP_FAIL_IF(true) << "unexpected argument " << w << hint_;
  }
  return true;
}

CommandWords split_command(int argc, char** argv) {
  CLI::App app;
  app.set_help_flag();   // `lockstep --help` is the dispatcher's, `lockstep CMD --help` the command's
  app.prefix_command();  // the first word that is no option is the command; the rest is its own
  CommandWords w;
  app.add_option("command", w.command);
  app.parse(argc, argv);
  w.args = app.remaining();
  return w;
}

}  // namespace lockstep::cli
