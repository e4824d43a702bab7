#!/usr/bin/env bash
# ci/deps.sh: install what quiesce needs on a fresh Debian 12 machine.
# Idempotent; silent when everything is already there.
set -euo pipefail

pkgs=(cmake ninja-build gcc g++ clang make pkg-config check libsubunit-dev libfaketime valgrind
      libdw-dev libelf-dev clang-format librsvg2-bin python3 libclang-rt-14-dev
      lighttpd)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "ci/deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
