#!/usr/bin/env bash
# Build the lpfleet-lab stand-in of Docker's apt repository (https://download.docker.com/linux) for
# Debian 12 (bookworm), from Debian's own binaries repackaged under Docker CE's names, versions and
# file layout, signed with a lab key:
#
#   build-repo.sh DEBDIR OUTDIR
#
#   OUTDIR/linux/debian/gpg                                         ASCII-armoured signing key
#   OUTDIR/linux/debian/dists/bookworm/{Release,InRelease,Release.gpg}
#   OUTDIR/linux/debian/dists/bookworm/stable/binary-amd64/{Packages,Packages.gz,Release}
#   OUTDIR/linux/debian/dists/bookworm/pool/stable/amd64/*.deb
#
# DEBDIR holds what fetch-debs.sh downloaded (docker.io, docker-cli, containerd, docker-compose,
# docker-buildx from trixie; runc, tini from bookworm). Packages built:
#
#   docker-ce             dockerd, docker-proxy, docker-init (tini-static); docker.service, docker.socket
#   docker-ce-cli         docker
#   containerd.io         containerd, containerd-shim*, ctr, runc; containerd.service, config.toml
#   docker-buildx-plugin  /usr/libexec/docker/cli-plugins/docker-buildx
#   docker-compose-plugin /usr/libexec/docker/cli-plugins/docker-compose
#
# Every ELF binary is checked to need at most glibc GLIBC_MAX (default 2.36, bookworm's): a
# binary that would not start on Debian 12 stops the build.
#
# Environment:
#   LPFLEET_LAB_REPO_GNUPGHOME  import the signing key into this directory (created, reused across
#                               builds); unset: a throwaway directory per build
#   SOURCE_DATE_EPOCH           timestamp for package files and the Release date
#   GLIBC_MAX                   the newest glibc symbol version a binary may need
#
# Re-running replaces OUTDIR/linux only, and only once the new tree is complete.
# Needs dpkg-deb, dpkg-scanpackages (dpkg-dev), gpg (gnupg) and objdump (binutils).
set -euo pipefail
umask 022

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../lib/script.sh
. "$here/../lib/script.sh"
# shellcheck source=../lib/apt-repo.sh
. "$here/../lib/apt-repo.sh"
need_args 2 2 "DEBDIR OUTDIR" "$@"
debdir="$(cd "$1" && pwd)"
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-1748563200}"
glibc_max="${GLIBC_MAX:-2.36}"
suite="bookworm"
suite_version="12"
arch="amd64"
# The fixed lab signing key, lab-signing-key.asc beside this script (a lab-only key, no secret:
# every lab host trusts it through inventories/lab, which pins this fingerprint).
key_fingerprint="DE074874E0F1F2DBB9187173C08E7092D541CBC6"
key_email="docker-repo@lpfleet-lab.invalid"
maintainer="lpfleet lab <${key_email}>"
deb_section="admin"
deb_homepage="https://www.docker.com"
deb_compression="-Zgzip -z1"

need_tools "install them with: apt-get install dpkg-dev gnupg binutils" \
  dpkg-deb dpkg-scanpackages gpg gpgconf gzip objdump md5sum sha1sum sha256sum sha512sum
repo_stage "$2" linux

# The one .deb of PACKAGE in DEBDIR, extracted under $workdir/debian/PACKAGE; prints its version.
unpack_debian() { # PACKAGE
  local package="$1" found
  found=("$debdir/${package}"_*.deb)
  if [ "${#found[@]}" -ne 1 ] || [ ! -f "${found[0]}" ]; then
    echo "$0: need exactly one ${package}_*.deb in $debdir (run fetch-debs.sh), found: ${found[*]}" >&2
    exit 1
  fi
  install -d -m 0755 "$workdir/debian/$package"
  dpkg-deb -x "${found[0]}" "$workdir/debian/$package"
  dpkg-deb -f "${found[0]}" Version
}

# 26.1.5+dfsg1-9+deb13u1+b1 -> 26.1.5; 1.7.24~ds1-6 -> 1.7.24 (Debian's repack suffixes dropped).
upstream_of() { # DEBIAN_VERSION
  local version="${1#*:}"
  version="${version%%-*}"
  version="${version%%+*}"
  echo "${version%%~*}"
}

# Fails when an ELF file needs a newer glibc than the target release has.
check_glibc() { # FILE
  local file="$1" needed
  needed="$( (objdump -T "$file" 2>/dev/null || true) | { grep -o 'GLIBC_[0-9][0-9.]*' || true; } \
    | sed 's/GLIBC_//' | sort -uV | tail -n1)"
  if [ -n "$needed" ] && [ "$(printf '%s\n%s\n' "$needed" "$glibc_max" | sort -V | tail -n1)" != "$glibc_max" ]; then
    echo "$0: $(basename "$file") needs glibc $needed, but Debian $suite_version has $glibc_max; take it from an older suite" >&2
    exit 1
  fi
}

# Copies a file from an unpacked Debian package (or src/) into a package tree.
put() { # SOURCE DESTINATION MODE
  local source="$1" destination="$2" mode="$3"
  install -d -m 0755 "$(dirname "$destination")"
  cp "$source" "$destination"
  chmod "$mode" "$destination"
  if [ "$mode" = 0755 ] && head -c4 "$destination" | grep -q 'ELF'; then check_glibc "$destination"; fi
}

put_readme() { # PACKAGE_ROOT PACKAGE FROM
  local doc="$1/usr/share/doc/$2"
  install -d -m 0755 "$doc"
  cat >"$doc/README.lpfleet-lab" <<README
$2 is an lpfleet-lab stand-in for Docker's package of the same name, made of
Debian's binaries ($3), so that provisioning from Docker's repository can be
tested without reaching download.docker.com. Built by
lab/docker-ce-repo/build-repo.sh in the lpfleet repository.
README
  chmod 0644 "$doc/README.lpfleet-lab"
}

# Maintainer scripts as debhelper writes them for packages with systemd units: enable on first
# install, start (or restart on upgrade) when systemd runs, stop on removal.
write_maintainer_scripts() { # PACKAGE_ROOT EXTRA_POSTINST UNIT...
  local root="$1" extra="$2"
  shift 2
  local units="$*"
  cat >"$root/DEBIAN/postinst" <<POSTINST
#!/bin/sh
set -e
if [ "\$1" = "configure" ]; then
$extra
	deb-systemd-helper unmask $units >/dev/null || true
	if deb-systemd-helper --quiet was-enabled $units; then
		deb-systemd-helper enable $units >/dev/null || true
	else
		deb-systemd-helper update-state $units >/dev/null || true
	fi
	if [ -d /run/systemd/system ]; then
		systemctl --system daemon-reload >/dev/null || true
		if [ -n "\$2" ]; then action=restart; else action=start; fi
		deb-systemd-invoke \$action $units >/dev/null || true
	fi
fi
POSTINST
  cat >"$root/DEBIAN/prerm" <<PRERM
#!/bin/sh
set -e
if [ -d /run/systemd/system ] && [ "\$1" = remove ]; then
	deb-systemd-invoke stop $units >/dev/null || true
fi
PRERM
  cat >"$root/DEBIAN/postrm" <<POSTRM
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
	systemctl --system daemon-reload >/dev/null || true
fi
if [ "\$1" = "remove" ]; then
	deb-systemd-helper mask $units >/dev/null || true
fi
if [ "\$1" = "purge" ]; then
	deb-systemd-helper purge $units >/dev/null || true
	deb-systemd-helper unmask $units >/dev/null || true
fi
POSTRM
  chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/prerm" "$root/DEBIAN/postrm"
}

# Builds $workdir/pkg/PACKAGE into the pool (FIELD: value lines on stdin go into DEBIAN/control).
build_deb() { # PACKAGE VERSION DESCRIPTION
  repo_build_deb "$workdir/pkg/$1" "$pool" "$1" "$2" "$3" \
    "Stand-in for Docker's $1, built from Debian's packages for lpfleet's lab."
}

deb_version() { # UPSTREAM
  echo "$1-1~debian.${suite_version}~${suite}"
}

build_docker_ce() {
  local debian_version upstream root="$workdir/pkg/docker-ce" from="$workdir/debian"
  debian_version="$(unpack_debian docker.io)"
  unpack_debian tini >/dev/null
  upstream="$(upstream_of "$debian_version")"
  put "$from/docker.io/usr/sbin/dockerd" "$root/usr/bin/dockerd" 0755
  put "$from/docker.io/usr/sbin/docker-proxy" "$root/usr/bin/docker-proxy" 0755
  put "$from/tini/usr/bin/tini-static" "$root/usr/bin/docker-init" 0755
  put "$here/src/docker.service" "$root/lib/systemd/system/docker.service" 0644
  put "$here/src/docker.socket" "$root/lib/systemd/system/docker.socket" 0644
  put_readme "$root" docker-ce "Debian's docker.io $debian_version, tini-static"
  install -d -m 0755 "$root/DEBIAN"
  write_maintainer_scripts "$root" \
    '	if [ -z "$2" ] && ! getent group docker >/dev/null; then groupadd --system docker; fi' \
    docker.socket docker.service
  build_deb docker-ce "5:$(deb_version "$upstream")" "Docker: the open-source application container engine" <<CONTROL
Pre-Depends: init-system-helpers (>= 1.54~)
Depends: containerd.io (>= 1.6.24), docker-ce-cli, iptables, libseccomp2 (>= 2.3.0), libc6 (>= 2.34), libsystemd0
Recommends: apparmor, ca-certificates, docker-ce-rootless-extras, git, libltdl7, pigz, procps, xz-utils
Conflicts: docker (<< 1.5~), docker-engine, docker.io
Replaces: docker-engine
CONTROL
}

build_docker_ce_cli() {
  local debian_version root="$workdir/pkg/docker-ce-cli"
  debian_version="$(unpack_debian docker-cli)"
  put "$workdir/debian/docker-cli/usr/bin/docker" "$root/usr/bin/docker" 0755
  put_readme "$root" docker-ce-cli "Debian's docker-cli $debian_version"
  build_deb docker-ce-cli "5:$(deb_version "$(upstream_of "$debian_version")")" \
    "Docker CLI: the open-source application container engine" <<CONTROL
Depends: libc6 (>= 2.34)
Recommends: docker-buildx-plugin, docker-compose-plugin
Conflicts: docker (<< 1.5~), docker-engine, docker.io
Replaces: docker-ce (<< 5:0), docker-engine
CONTROL
}

build_containerd_io() {
  local debian_version runc_version root="$workdir/pkg/containerd.io" from="$workdir/debian" program
  debian_version="$(unpack_debian containerd)"
  runc_version="$(unpack_debian runc)"
  for program in "$from"/containerd/usr/bin/*; do
    put "$program" "$root/usr/bin/$(basename "$program")" 0755
  done
  put "$from/runc/usr/sbin/runc" "$root/usr/bin/runc" 0755
  put "$here/src/containerd.service" "$root/lib/systemd/system/containerd.service" 0644
  put "$here/src/config.toml" "$root/etc/containerd/config.toml" 0644
  put_readme "$root" containerd.io "Debian's containerd $debian_version, runc $runc_version"
  install -d -m 0755 "$root/DEBIAN"
  echo /etc/containerd/config.toml >"$root/DEBIAN/conffiles"
  write_maintainer_scripts "$root" "	:" containerd.service
  build_deb containerd.io "$(upstream_of "$debian_version")-1" "An open and reliable container runtime" <<CONTROL
Pre-Depends: init-system-helpers (>= 1.54~)
Depends: libc6 (>= 2.34), libseccomp2 (>= 2.4.1)
Conflicts: containerd, runc
Replaces: containerd, runc
Provides: containerd, runc
CONTROL
}

build_cli_plugin() { # PACKAGE DEBIAN_PACKAGE PLUGIN DESCRIPTION
  local package="$1" debian_package="$2" plugin="$3" description="$4" debian_version
  local root="$workdir/pkg/$package"
  debian_version="$(unpack_debian "$debian_package")"
  put "$workdir/debian/$debian_package/usr/libexec/docker/cli-plugins/$plugin" \
    "$root/usr/libexec/docker/cli-plugins/$plugin" 0755
  put_readme "$root" "$package" "Debian's $debian_package $debian_version"
  build_deb "$package" "$(deb_version "$(upstream_of "$debian_version")")" "$description" <<CONTROL
Depends: libc6 (>= 2.34)
Enhances: docker-ce-cli
CONTROL
}

write_release() {
  {
    echo "Origin: Docker"
    echo "Label: Docker CE (lpfleet-lab stand-in)"
    echo "Suite: $suite"
    echo "Codename: $suite"
    echo "Architectures: $arch"
    echo "Components: stable"
    echo "Description: Docker CE packages for Debian $suite (lpfleet-lab stand-in)"
    repo_release_tail "stable/binary-$arch/Packages" "stable/binary-$arch/Packages.gz" "stable/binary-$arch/Release"
  } >Release
}

base="$stage/debian"
suite_dir="$base/dists/$suite"
pool="$suite_dir/pool/stable/$arch"
install -d -m 0755 "$pool" "$suite_dir/stable/binary-$arch"
build_docker_ce
build_docker_ce_cli
build_containerd_io
build_cli_plugin docker-buildx-plugin docker-buildx docker-buildx "Docker Buildx CLI plugin"
build_cli_plugin docker-compose-plugin docker-compose docker-compose "Docker Compose (V2) CLI plugin"
repo_import_key "$here/lab-signing-key.asc"

(
  cd "$base"
  dpkg-scanpackages --multiversion "dists/$suite/pool/stable/$arch" /dev/null >"dists/$suite/stable/binary-$arch/Packages" 2>/dev/null
  gzip -9 -n -c "dists/$suite/stable/binary-$arch/Packages" >"dists/$suite/stable/binary-$arch/Packages.gz"
  printf 'Archive: %s\nComponent: stable\nOrigin: Docker\nLabel: Docker CE\nArchitecture: %s\n' \
    "$suite" "$arch" >"dists/$suite/stable/binary-$arch/Release"
  cd "dists/$suite"
  write_release
  repo_sign "$key_fingerprint" "$base/gpg"
)
repo_publish
echo "built $(grep -c '^Package:' "$outdir/linux/debian/dists/$suite/stable/binary-$arch/Packages") packages for $suite in $outdir/linux"
