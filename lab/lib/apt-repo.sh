# Sourced (not run) by lab/toolkit/build-repo.sh and lab/docker-ce-repo/build-repo.sh, after
# lab/lib/script.sh: the steps both signed lab apt repositories go through, so that they are
# staged, signed and published alike.
#
#   repo_stage OUTDIR NAME       sets outdir (absolute), workdir (scratch) and stage (the new tree,
#                                beside OUTDIR/NAME); both are removed on exit
#   repo_import_key KEYFILE      imports the lab signing key into LPFLEET_LAB_REPO_GNUPGHOME (created,
#                                kept across builds) or, unset, a throwaway GNUPGHOME
#   repo_release_tail FILE...    prints a Release file's Date (SOURCE_DATE_EPOCH) and its MD5Sum, SHA1,
#                                SHA256 and SHA512 sections for FILE..., paths relative to the Release
#   repo_sign FINGERPRINT KEY    signs ./Release as InRelease (clearsigned) and Release.gpg (detached),
#                                SHA512, and exports the public key ASCII-armoured to KEY
#   repo_publish                 files 0644, directories 0755; the stage replaces OUTDIR/NAME only now,
#                                once it is complete
#   repo_build_deb ...           one package (see below)

repo_stage() { # OUTDIR NAME
  repo_name="$2"
  gnupghome=""
  mkdir -p "$1"
  outdir="$(cd "$1" && pwd)"
  workdir="$(mktemp -d)"
  stage="$(mktemp -d "$outdir/.$repo_name.XXXXXX")"
  trap repo_cleanup EXIT
}

repo_cleanup() {
  if [ -n "$gnupghome" ]; then
    GNUPGHOME="$gnupghome" gpgconf --kill all >/dev/null 2>&1 || true
    if [ -z "${LPFLEET_LAB_REPO_GNUPGHOME:-}" ]; then rm -rf "$gnupghome"; fi
  fi
  rm -rf "$workdir" "$stage"
}

repo_import_key() { # KEYFILE
  if [ -n "${LPFLEET_LAB_REPO_GNUPGHOME:-}" ]; then
    gnupghome="$LPFLEET_LAB_REPO_GNUPGHOME"
    mkdir -p "$gnupghome"
  else
    gnupghome="$(mktemp -d)"
  fi
  chmod 0700 "$gnupghome"
  export GNUPGHOME="$gnupghome"
  gpg --batch --quiet --import "$1"
}

repo_release_tail() { # FILE...
  local algorithm tool file
  echo "Date: $(LC_ALL=C date -u -d "@$SOURCE_DATE_EPOCH" '+%a, %d %b %Y %H:%M:%S UTC')"
  for algorithm in MD5Sum:md5sum SHA1:sha1sum SHA256:sha256sum SHA512:sha512sum; do
    tool="${algorithm#*:}"
    echo "${algorithm%%:*}:"
    for file in "$@"; do
      printf ' %s %8d %s\n' "$("$tool" "$file" | cut -d' ' -f1)" "$(stat -c %s "$file")" "$file"
    done
  done
}

repo_sign() { # FINGERPRINT KEY
  gpg --batch --yes --quiet --local-user "$1" --digest-algo SHA512 --clearsign -o InRelease Release
  gpg --batch --yes --quiet --local-user "$1" --digest-algo SHA512 --armor --detach-sign -o Release.gpg Release
  gpg --batch --armor --export "$1" >"$2"
}

repo_publish() {
  find "$stage" -type d -exec chmod 0755 {} +
  find "$stage" -type f -exec chmod 0644 {} +
  rm -rf "$outdir/$repo_name.old"
  if [ -e "$outdir/$repo_name" ]; then mv "$outdir/$repo_name" "$outdir/$repo_name.old"; fi
  mv "$stage" "$outdir/$repo_name"
  rm -rf "$outdir/$repo_name.old"
}

# Writes ROOT/DEBIAN/control and builds ROOT into DIR/PACKAGE_VERSION_ARCH.deb (the version's epoch
# left out of the name), every file dated SOURCE_DATE_EPOCH. Control fields beyond the common ones
# come on stdin. The caller sets arch, maintainer, deb_section, deb_homepage and deb_compression
# (dpkg-deb's compression options).
repo_build_deb() { # ROOT DIR PACKAGE VERSION SUMMARY DETAIL
  local root="$1" dir="$2" package="$3" version="$4" summary="$5" detail="$6" size
  size="$(du -sk --apparent-size --exclude=DEBIAN "$root" | cut -f1)"
  install -d -m 0755 "$root/DEBIAN"
  {
    echo "Package: $package"
    echo "Version: $version"
    echo "Architecture: $arch"
    echo "Maintainer: $maintainer"
    echo "Installed-Size: $size"
    cat
    echo "Section: $deb_section"
    echo "Priority: optional"
    echo "Homepage: $deb_homepage"
    echo "Description: $summary (lpfleet-lab stand-in)"
    echo " $detail"
  } >"$root/DEBIAN/control"
  find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  # shellcheck disable=SC2086 # deb_compression is several options
  dpkg-deb --root-owner-group $deb_compression --build "$root" "$dir/${package}_${version#*:}_${arch}.deb" >/dev/null
}
