#!/usr/bin/env bash
# Download the Debian packages the Docker CE repository stand-in is built from, with apt (which
# checks the archive's signatures against debian-archive-keyring):
#
#   fetch-debs.sh OUTDIR MIRROR
#
# From trixie (Debian 13): docker.io (dockerd, docker-proxy), docker-cli, containerd, docker-compose
# (compose v2) and docker-buildx. Their binaries need glibc 2.34 (GLIBC_2.34 symbols at most), so
# they run on bookworm (glibc 2.36). From bookworm (Debian 12): runc and tini, whose trixie builds
# need glibc 2.38. build-repo.sh checks the glibc each binary needs again, after the download.
#
# Runs as root in the lab's builder image, with network (lab/labctl docker_ce_debs); writes the
# .deb files and SHA256SUMS into OUTDIR, owned by OWNER_UID:OWNER_GID when those are set.
set -euo pipefail
umask 022

if [ "$#" -ne 2 ]; then
  echo "usage: $0 OUTDIR MIRROR" >&2
  exit 2
fi
outdir="$1"
mirror="$2"
packages="docker.io/trixie docker-cli/trixie containerd/trixie docker-compose/trixie docker-buildx/trixie
runc/bookworm tini/bookworm"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/archives/partial"
cat >"$work/sources.list" <<SOURCES
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie main
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror bookworm main
SOURCES
apt_options=(-o "Dir::Etc::SourceList=$work/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
             -o "Dir::State::Lists=$work/lists" -o "Dir::Cache::Archives=$work/archives"
             -o "Acquire::Languages=none" -o "APT::Sandbox::User=root")
apt-get "${apt_options[@]}" -qq update
mkdir -p "$outdir"
# shellcheck disable=SC2086  # one word per package
(cd "$outdir" && apt-get "${apt_options[@]}" -qq download $packages)
(cd "$outdir" && sha256sum ./*.deb >SHA256SUMS)
if [ -n "${OWNER_UID:-}" ]; then chown -R "$OWNER_UID:${OWNER_GID:-$OWNER_UID}" "$outdir"; fi
echo "fetched $(ls "$outdir"/*.deb | wc -l) packages from $mirror into $outdir"
