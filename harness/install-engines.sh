#!/usr/bin/env bash
# Newer Docker engines beside the system's: Debian 13's docker.io (26.x), containerd, docker-buildx and the
# ORAS CLI, downloaded from Debian's archive with a sources list and lists directory of our own and unpacked
# with `dpkg -x` into one directory. Nothing is installed over the system's packages: the engines run as
# second daemons (harness/second_daemon.py, harness/engines.py) with the system's runc (Debian 13's runc
# needs glibc 2.38; Debian 12 has 2.36).
#
#   bash harness/install-engines.sh [DIR]     # default: $BBC_ENGINES_DIR, else ~/.cache/bbc-engines
#
# Idempotent: a directory that already holds the binaries is left as it is.
set -euo pipefail

dir=${1:-${BBC_ENGINES_DIR:-$HOME/.cache/bbc-engines}}
root="$dir/debian13"
if [ -x "$root/usr/sbin/dockerd" ] && [ -x "$root/usr/bin/containerd" ] && [ -x "$root/usr/bin/oras" ] \
    && [ -x "$root/usr/libexec/docker/cli-plugins/docker-buildx" ]; then
  echo "engines: $("$root/usr/sbin/dockerd" --version) in $root"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs"
echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main" \
  >"$work/sources.list"
apt_opts=(-o "Dir::Etc::sourcelist=$work/sources.list" -o "Dir::Etc::sourceparts=/nonexistent"
          -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o "APT::Sandbox::User=root")
apt-get "${apt_opts[@]}" -qq update
(cd "$work/debs" && apt-get "${apt_opts[@]}" -qq download docker.io docker-cli containerd docker-buildx oras)

rm -rf "$root.partial"
mkdir -p "$root.partial"
for deb in "$work"/debs/*.deb; do
  dpkg -x "$deb" "$root.partial"
done
ls "$work"/debs >"$root.partial/PACKAGES"
rm -rf "$root"
mv "$root.partial" "$root"
echo "engines: $("$root/usr/sbin/dockerd" --version) in $root"
