# Sourced by the bench scripts whose arguments are all positive whole numbers:
#   bench_args MAX_ARGS "$@"
# answers -h/--help with the calling script's header comment (down to its usage line) and exits;
# refuses more than MAX_ARGS arguments, or one that is not a positive whole number, in one line.
bench_args() {
  local max=$1 script name arg
  shift
  script=${BASH_SOURCE[1]}
  name=$(basename "$script")
  if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
    sed -n '2,/^# usage/p' "$script" | sed 's/^# \{0,1\}//'
    exit 0
  fi
  if [ $# -gt "$max" ]; then
    echo "$name: at most $max arguments (see --help), got $#" >&2
    exit 2
  fi
  for arg in "$@"; do
    case $arg in '' | *[!0-9]* | 0)
      echo "$name: every argument is a positive whole number (see --help), got '$arg'" >&2
      exit 2 ;;
    esac
  done
}
