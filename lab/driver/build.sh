#!/usr/bin/env bash
# Build the lpfleet-lab NVML stand-in: OUTDIR/libnvidia-ml.so.1 (C, libc only).
# Usage: lab/driver/build.sh OUTDIR        (CC overrides the compiler, default gcc)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../lib/script.sh
. "$here/../lib/script.sh"
need_args 1 1 OUTDIR "$@"
outdir="$1"
cc="${CC:-gcc}"
need_tools "install gcc (apt-get install gcc libc6-dev) or set CC to a C compiler" "$cc"

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
