#!/usr/bin/env bash
# Build the lpfleet-lab NVML stand-in: OUTDIR/libnvidia-ml.so.1 (C, libc only).
# Usage: lab/driver/build.sh OUTDIR        (CC overrides the compiler, default gcc)
set -euo pipefail

if [ "$#" -ne 1 ] || [ -z "$1" ]; then
  echo "usage: $0 OUTDIR" >&2
  exit 2
fi

here="$(cd "$(dirname "$0")" && pwd)"
outdir="$1"
cc="${CC:-gcc}"

if ! command -v "$cc" >/dev/null 2>&1; then
  echo "$0: C compiler '$cc' not found; install gcc (apt-get install gcc libc6-dev) or set CC" >&2
  exit 1
fi

mkdir -p "$outdir"
tmp="$(mktemp "$outdir/.libnvidia-ml.so.1.XXXXXX")"
trap 'rm -f "$tmp"' EXIT

# -std=c99 without _GNU_SOURCE keeps the library off glibc's newest symbol versions,
# so the same file works when bind-mounted into containers with an older libc.
"$cc" -std=c99 -O2 -Wall -Wextra -Wpedantic -Werror -fPIC -shared -fvisibility=hidden \
  -Wl,-soname,libnvidia-ml.so.1 -Wl,--no-undefined \
  -o "$tmp" "$here/libnvidia-ml.c"
chmod 0755 "$tmp"
mv -f "$tmp" "$outdir/libnvidia-ml.so.1"
trap - EXIT
echo "built $outdir/libnvidia-ml.so.1"
