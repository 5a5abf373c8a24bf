# Sourced (not run) by the lab's build scripts: lab/driver/*.sh, lab/toolkit/build-repo.sh and
# lab/docker-ce-repo/build-repo.sh. The argument and tool checks each of them starts with; bash
# builtins only, so that a missing tool is reported, not tripped over.

# Exits 2 with "usage: SCRIPT USAGE" unless there are MIN to MAX arguments and the first MIN are
# not empty.
need_args() { # MIN MAX USAGE "$@"
  local min="$1" max="$2" usage="$3" index
  shift 3
  if [ "$#" -lt "$min" ] || [ "$#" -gt "$max" ]; then
    echo "usage: $0 $usage" >&2
    exit 2
  fi
  for ((index = 1; index <= min; index++)); do
    if [ -z "${!index}" ]; then
      echo "usage: $0 $usage" >&2
      exit 2
    fi
  done
}

# Exits 1 naming every TOOL that is not on PATH, followed by HINT (how to install them).
need_tools() { # HINT TOOL...
  local hint="$1" tool missing=""
  shift
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
  done
  if [ -n "$missing" ]; then
    echo "$0: missing tools:$missing; $hint" >&2
    exit 1
  fi
}
