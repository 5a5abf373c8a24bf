#!/usr/bin/env bash
# Install the lpfleet-lab driver stand-in into a root file system (for example an image
# being built), the way a driver install would lay it out:
#   DESTDIR/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1   NVML stand-in (0755)
#   DESTDIR/usr/bin/nvidia-smi                            nvidia-smi stand-in (0755)
#   DESTDIR/etc/lpfleet-lab/gpus.json                     the GPU profile (0644)
# A profile without GPUs (no-gpu) installs nothing: such a host has no driver.
#
# Usage: lab/driver/install.sh DESTDIR PROFILE_JSON [BUILT_LIBNVIDIA_ML]
#   BUILT_LIBNVIDIA_ML: a libnvidia-ml.so.1 from lab/driver/build.sh; built here when omitted.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../lib/script.sh
. "$here/../lib/script.sh"
need_args 2 3 "DESTDIR PROFILE_JSON [BUILT_LIBNVIDIA_ML]" "$@"
destdir="$1"
profile="$2"
prebuilt="${3:-}"

if [ ! -f "$profile" ]; then
  echo "$0: GPU profile '$profile' not found; pick one of $(cd "$here/../profiles" && echo ./*.json)" >&2
  exit 1
fi

# Validate the profile with the nvidia-smi stand-in itself; it also counts the GPUs.
set +e
count="$(env -u NVIDIA_VISIBLE_DEVICES -u CUDA_VISIBLE_DEVICES LPFLEET_LAB_GPU_PROFILE="$profile" \
  python3 "$here/nvidia_smi.py" --query-gpu=count --format=csv,noheader | head -n 1)"
status="${PIPESTATUS[0]}"
set -e
if [ "$status" -eq 6 ]; then
  echo "$profile lists no GPU: installing no driver stand-in (a host without an NVIDIA driver)"
  exit 0
fi
if [ "$status" -ne 0 ]; then
  echo "$0: GPU profile '$profile' is not usable: $count" >&2
  exit 1
fi

workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT
if [ -z "$prebuilt" ]; then
  "$here/build.sh" "$workdir" >/dev/null
  prebuilt="$workdir/libnvidia-ml.so.1"
fi

install -D -m 0755 "$prebuilt" "$destdir/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1"
{ echo '#!/usr/bin/env python3'; cat "$here/nvidia_smi.py"; } >"$workdir/nvidia-smi"
install -D -m 0755 "$workdir/nvidia-smi" "$destdir/usr/bin/nvidia-smi"
install -D -m 0644 "$profile" "$destdir/etc/lpfleet-lab/gpus.json"
echo "installed the driver stand-in for $count GPU(s) from $profile under $destdir"
