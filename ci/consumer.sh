#!/usr/bin/env bash
# ci/consumer.sh: installs quiesce into a temporary prefix and builds the
# small project in tools/consumer/ against it, once through
# find_package(quiesce) (shared and static, plain and under memcheck) and
# once through pkg-config (quiesce + quiesce-check), then runs its test.
# Called by ci/test.sh after the dev preset is built.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cmake --install "${QC_CONSUMER_BUILD:-build/dev}" --prefix "$work/prefix" >/dev/null

echo "== consumer: find_package(quiesce)"
# Reports name file:line of the user's code only when it has debug info.
cmake -S tools/consumer -B "$work/cmake" -G Ninja \
	-DCMAKE_BUILD_TYPE=RelWithDebInfo \
	-DCMAKE_PREFIX_PATH="$work/prefix" -DQUIESCE_VALGRIND=ON >/dev/null
cmake --build "$work/cmake" >/dev/null
ctest --test-dir "$work/cmake" --output-on-failure

echo "== consumer: pkg-config quiesce-check"
export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig:$work/prefix/lib/x86_64-linux-gnu/pkgconfig"
# shellcheck disable=SC2046
cc -std=c11 -g -D_GNU_SOURCE -o "$work/check_worker_pc" tools/consumer/check_worker.c \
	$(pkg-config --cflags --libs quiesce-check) -Wl,-rpath,"$work/prefix/lib"
CK_FORK=yes "$work/check_worker_pc"

echo "== consumer: pkg-config, built by clang -O2 -g"
# shellcheck disable=SC2046 # pkg-config's flags are words
clang -std=c11 -O2 -g -D_GNU_SOURCE -o "$work/check_worker_clang" \
	tools/consumer/check_worker.c \
	$(pkg-config --cflags --libs quiesce-check) -Wl,-rpath,"$work/prefix/lib"
CK_FORK=yes "$work/check_worker_clang"
echo "consumer: find_package, pkg-config and clang builds passed"
