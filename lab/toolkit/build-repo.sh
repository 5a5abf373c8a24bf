#!/usr/bin/env bash
# Build the lpfleet-lab NVIDIA Container Toolkit stand-in packages and a signed apt
# repository laid out like NVIDIA's (https://nvidia.github.io/libnvidia-container):
#
#   OUTDIR/libnvidia-container/gpgkey                              ASCII-armoured signing key
#   OUTDIR/libnvidia-container/stable/deb/nvidia-container-toolkit.list
#   OUTDIR/libnvidia-container/stable/deb/amd64/                   flat repository:
#       *.deb, Packages, Packages.gz, Release, InRelease, Release.gpg
#
# Packages, each in every version of LPFLEET_LAB_TOOLKIT_VERSIONS (default "1.17.7-1 1.17.8-1"):
#   nvidia-container-toolkit, nvidia-container-toolkit-base, libnvidia-container-tools,
#   libnvidia-container1.
#
# Environment:
#   LPFLEET_LAB_REPO_GNUPGHOME  import the signing key into this directory (created, reused across
#                               builds); unset: a throwaway directory per build
#   LPFLEET_LAB_REPO_BASE_URL   base URL written into the .list file
#                               (default http://nvidia-repo/libnvidia-container)
#   SOURCE_DATE_EPOCH           timestamp for package files and the Release date
#
# Re-running replaces OUTDIR/libnvidia-container only, and only once the new tree is complete.
# Needs dpkg-deb and dpkg-scanpackages (Debian package dpkg-dev) and gpg (gnupg).
set -euo pipefail
umask 022

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=../lib/script.sh
. "$here/../lib/script.sh"
# shellcheck source=../lib/apt-repo.sh
. "$here/../lib/apt-repo.sh"
need_args 1 1 OUTDIR "$@"
versions="${LPFLEET_LAB_TOOLKIT_VERSIONS:-1.17.7-1 1.17.8-1}"
base_url="${LPFLEET_LAB_REPO_BASE_URL:-http://nvidia-repo/libnvidia-container}"
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-1748563200}"
arch="amd64"
# The fixed lab signing key, lab-signing-key.asc beside this script (a lab-only key, no secret:
# every lab host trusts it through inventories/lab, which pins this fingerprint).
key_fingerprint="9DD2D656C930AE2E8AD7D9E5F538EFB59789438D"
key_email="nvidia-repo@lpfleet-lab.invalid"
maintainer="lpfleet lab <${key_email}>"
deb_section="utils"
deb_homepage="https://github.com/NVIDIA/nvidia-container-toolkit"
deb_compression="-Zxz"

need_tools "install them with: apt-get install dpkg-dev gnupg" \
  dpkg-deb dpkg-scanpackages gpg gpgconf gzip md5sum sha1sum sha256sum sha512sum
repo_stage "$1" libnvidia-container

# Copies a source file into a package tree; Python sources get a shebang and the
# package's upstream version.
put_file() { # SOURCE DESTINATION MODE UPSTREAM_VERSION
  local source="$1" destination="$2" mode="$3" upstream="$4"
  install -d -m 0755 "$(dirname "$destination")"
  case "$source" in
    *.py) { echo '#!/usr/bin/python3'; cat "$source"; } >"$destination" ;;
    *) cat "$source" >"$destination" ;;
  esac
  if grep -q '^TOOLKIT_VERSION' "$destination"; then
    sed -i -E "s/^(TOOLKIT_VERSION ?= ?\")[^\"]*\"/\\1${upstream}\"/" "$destination"
    grep '^TOOLKIT_VERSION' "$destination" | grep -Fq "\"${upstream}\"" || {
      echo "$0: could not set TOOLKIT_VERSION=${upstream} in $destination" >&2
      exit 1
    }
  fi
  chmod "$mode" "$destination"
}

put_readme() { # PACKAGE_ROOT PACKAGE
  local doc="$1/usr/share/doc/$2"
  install -d -m 0755 "$doc"
  cat >"$doc/README.lpfleet-lab" <<EOF
$2 is an lpfleet-lab stand-in for NVIDIA's package of the same name.
It exists so that provisioning can be tested on hosts without a GPU; it is
built by lab/toolkit/build-repo.sh in the lpfleet repository.
EOF
  chmod 0644 "$doc/README.lpfleet-lab"
}

# Builds one .deb into the stage. The files are given as SOURCE:DESTINATION:MODE triples.
build_package() { # PACKAGE VERSION DEPENDS DESCRIPTION FILE...
  local package="$1" version="$2" depends="$3" description="$4"
  shift 4
  local upstream="${version%-*}"
  local root="$workdir/$package-$version"
  install -d -m 0755 "$root"
  local spec source destination mode
  for spec in "$@"; do
    IFS=: read -r source destination mode <<<"$spec"
    put_file "$here/src/$source" "$root$destination" "$mode" "$upstream"
  done
  put_readme "$root" "$package"
  if [ -n "$depends" ]; then echo "Depends: $depends"; fi |
    repo_build_deb "$root" "$repo" "$package" "$version" "$description" \
      "Stand-in for NVIDIA's $package, for lpfleet's lab hosts without a GPU."
}

build_all_packages() {
  local version
  for version in $versions; do
    build_package libnvidia-container1 "$version" "" \
      "NVIDIA container runtime library"
    build_package libnvidia-container-tools "$version" "libnvidia-container1 (>= $version), python3" \
      "NVIDIA container runtime library (command-line tools)" \
      "nvidia_container_cli.py:/usr/bin/nvidia-container-cli:0755"
    build_package nvidia-container-toolkit-base "$version" "python3" \
      "NVIDIA Container Toolkit Base" \
      "nvidia_ctk.py:/usr/bin/nvidia-ctk:0755" \
      "nvidia_container_runtime.py:/usr/bin/nvidia-container-runtime:0755"
    build_package nvidia-container-toolkit "$version" \
      "libnvidia-container-tools (>= $version), libnvidia-container-tools (<< 2.0.0), nvidia-container-toolkit-base (= $version)" \
      "NVIDIA Container Toolkit" \
      "nvidia-container-runtime-hook:/usr/bin/nvidia-container-runtime-hook:0755"
  done
}

write_release() {
  {
    echo "Origin: lpfleet-lab"
    echo "Label: libnvidia-container (lpfleet-lab stand-in)"
    echo "Architectures: $arch"
    repo_release_tail Packages Packages.gz
  } >Release
}

repo="$stage/stable/deb/$arch"
install -d -m 0755 "$repo"
build_all_packages
repo_import_key "$here/lab-signing-key.asc"

(
  cd "$repo"
  dpkg-scanpackages --multiversion . /dev/null >Packages 2>/dev/null
  gzip -9 -n -c Packages >Packages.gz
  write_release
  repo_sign "$key_fingerprint" "$stage/gpgkey"
)
echo "deb ${base_url}/stable/deb/\$(ARCH) /" >"$stage/stable/deb/nvidia-container-toolkit.list"
repo_publish
echo "built $(grep -c '^Package:' "$outdir/libnvidia-container/stable/deb/$arch/Packages") packages ($versions) in $outdir/libnvidia-container"
