#!/usr/bin/env bash
# ci/bench.sh: quiesce's context benchmark beside its peers (Go context, C++20
# stop_token, naive C) from shared/bench-peers. Builds the release preset,
# runs quiesce-bench RUNS times (default 5, as the peers) into
# /tmp/quiesce.txt, then the peers' runner with that file, which prints one
# table of medians.
set -euo pipefail
cd "$(dirname "$0")/.."

bash ci/deps.sh
# The peers need Go and a C++ compiler; only the bench needs them.
missing=()
for p in golang-go g++; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo"
	$sudo apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cmake --preset release >/dev/null
cmake --build --preset release

ours=/tmp/quiesce.txt
bench=build/release/tools/bench/quiesce-bench
args=()
if [ -x "$bench" ]; then
	: >"$ours"
	for _ in $(seq "${RUNS:-5}"); do
		"$bench" >>"$ours"
	done
	args=("$ours")
else
	echo "ci/bench.sh: $bench is not built yet; showing the peers only" >&2
fi

shared="$(git rev-parse --show-toplevel)/../shared"
bash "$shared/bench-peers/run.sh" "${args[@]}"
