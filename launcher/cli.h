// The command line of every lockstep command, through CLI11 (Debian libcli11-dev): each command
// declares its options on a CommandLine and parses once. What every command does the same lives
// here: --help / -h prints the command's own text (exit 0); numbers are strict (cli_number.h); a
// repeatable option keeps the order given; an option's value is always the next word, even when it
// starts with '-' (`--mpirun-arg -x`, `--epochs -5`), or follows '=' (`--mpirun-arg=--oversubscribe`);
// and every user error is one lockstep::Error line naming the option and the value:
//   unknown option --foo; usage: ...        unexpected argument x; usage: ...
//   --set needs a value                      --data: the value is empty
//   --epochs: expected a whole number in [1, 1000000], got "abc"
// Only main.cc (and the commands that own their exit status) turn the Error into an exit code.
// Only cli.cc includes CLI11, so the commands compile without it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "launcher/cli_number.h"

namespace CLI {
class App;
}

namespace lockstep::cli {

class CommandLine {
 public:
  // help: what --help prints, whole (usage line included). hint: appended to an unknown option's
  // or an unexpected argument's error, e.g. "; usage: lockstep worker --coordinator HOST:PORT ...".
  CommandLine(std::string help, std::string hint);
  ~CommandLine();
  CommandLine(const CommandLine&) = delete;
  CommandLine& operator=(const CommandLine&) = delete;

  // From now on an empty value (`--data ''`) is refused: "--data: the value is empty".
  CommandLine& refuse_empty_values() {
    refuse_empty_ = true;
    return *this;
  }

  // Options. `names` as CLI11 takes them ("-n,--ranks"); the first names the option in messages.
  // An option given twice keeps its last value; take() sees every value, in the order given.
  using Take = std::function<void(const std::string& option, const std::string& value)>;
  void value(const std::string& names, Take take);
  void text(const std::string& names, std::string& into);
  void texts(const std::string& names, std::vector<std::string>& into);  // repeatable, in order
  void flag(const std::string& names, bool& into);
  void real(const std::string& names, double& into, double lo, double hi);
  // A whole number in [lo, hi] into `into` (an integer or a std::optional of one).
  template <class T>
  void whole(const std::string& names, T& into, int64_t lo, int64_t hi) {
    value(names, [&into, lo, hi](const std::string& option, const std::string& v) {
      into = static_cast<T>(whole_number(option, v, lo, hi));
    });
  }
  // One positional argument (the first word that is no option or option value); a second one is
  // "unexpected argument".
  void positional(const std::string& name, std::string& into);

  // Parses the words after the command's name. False when --help was asked for (the help is
  // printed: exit 0); throws lockstep::Error, one line, for a user error.
  bool parse(int argc, char** argv);
  bool parse(const std::vector<std::string>& args);

 private:
  std::string first_name(const std::string& names) const;

  std::unique_ptr<CLI::App> app_;
  std::string help_, hint_;
  bool refuse_empty_ = false;
};

// The dispatcher's split of `lockstep COMMAND ARGS...`: the command's name ("" when none was
// given) and every other word, in order, for the command's own CommandLine.
struct CommandWords {
  std::string command;
  std::vector<std::string> args;
};
CommandWords split_command(int argc, char** argv);

}  // namespace lockstep::cli
