#!/usr/bin/env bash
# ci/fuzz.sh [SECONDS]: fuzzes the context model (suites/fuzz_model.c, a
# libFuzzer target over the interpreter in suites/model.c) for SECONDS
# (default: FUZZ_SECONDS, else 20) from a copy of the checked-in corpus
# suites/corpus/model, which is left untouched.
#
# Built with Debian's clang: -fsanitize=fuzzer,address,undefined, straight
# from the library's sources (harness/*.c), so the fuzzer's coverage and
# the sanitizers reach into quiesce itself. Output in FUZZ_DIR (default
# build/fuzz): the binary, fuzz.log, and any crash-*/timeout-*/leak-*
# reproducer (replay: build/fuzz/fuzz_model <file>).
#
# The last line is "fuzz: <execs> execs in <s> s, corpus <a> -> <b> inputs,
# <k> crashes"; the exit status is non-zero when libFuzzer found anything
# (a model mismatch aborts) or the build failed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
secs=${1:-${FUZZ_SECONDS:-20}}
dir=${FUZZ_DIR:-$root/build/fuzz}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

# The library's sources as CMake builds them (hidden visibility, debug
# checks, a sanitizer build's time multiplier), plus version.h, which
# quiesce.h wants and CMake would generate.
gen=$dir/include/quiesce
mkdir -p "$gen"
version=$(sed -nE 's/^project\(quiesce VERSION ([0-9.]+).*/\1/p' CMakeLists.txt)
IFS=. read -r major minor patch <<<"$version"
sed -e "s/@PROJECT_VERSION@/$version/g" \
	-e "s/@PROJECT_VERSION_MAJOR@/$major/g" \
	-e "s/@PROJECT_VERSION_MINOR@/$minor/g" \
	-e "s/@PROJECT_VERSION_PATCH@/$patch/g" \
	tools/cmake/version.h.in >"$gen/version.h.new"
cmp -s "$gen/version.h.new" "$gen/version.h" 2>/dev/null ||
	mv "$gen/version.h.new" "$gen/version.h"
rm -f "$gen/version.h.new"

bin=$dir/fuzz_model
# shellcheck disable=SC2046 # pkg-config's words are separate flags
if ! clang -std=c11 -g -O1 -fno-omit-frame-pointer \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-D_GNU_SOURCE -DQC_BUILDING_LIBRARY -DQC_DEBUG=1 \
	-DQC_SANITIZER_BUILD=1 -fvisibility=hidden \
	-Iinclude -I"$dir/include" -Iharness -Isuites \
	suites/fuzz_model.c suites/model.c harness/*.c \
	$(pkg-config --cflags --libs libdw) -ldl -pthread \
	-o "$bin.new" >"$dir/build.log" 2>&1; then
	cat "$dir/build.log"
	echo "ci/fuzz.sh: fuzz_model did not build" >&2
	exit 1
fi
mv "$bin.new" "$bin"

# Fuzz from a copy: new inputs must not land in the source tree.
corpus=$(mktemp -d "${TMPDIR:-/tmp}/qc-fuzz-corpus.XXXXXX")
trap 'rm -rf "$corpus"' EXIT
cp suites/corpus/model/* "$corpus"/
before=$(find "$corpus" -type f | wc -l)

rc=0
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
	UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1} \
	"$bin" "$corpus" -max_total_time="$secs" -timeout=10 \
	-rss_limit_mb=2048 -print_final_stats=1 \
	-artifact_prefix="$dir/" >"$dir/fuzz.log" 2>&1 || rc=$?

execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$dir/fuzz.log" | tail -n 1)
took=$(sed -nE 's/^Done [0-9]+ runs in ([0-9]+) second.*/\1/p' "$dir/fuzz.log" | tail -n 1)
after=$(find "$corpus" -type f | wc -l)
crashes=$(find "$dir" -maxdepth 1 -newer "$bin" \
	\( -name 'crash-*' -o -name 'timeout-*' -o -name 'leak-*' \
	-o -name 'oom-*' \) | wc -l)
if [ "$rc" -ne 0 ]; then
	tail -n 40 "$dir/fuzz.log"
	echo "ci/fuzz.sh: libFuzzer stopped with status $rc (log: $dir/fuzz.log)" >&2
	[ "$crashes" -gt 0 ] || crashes=1
fi
echo "fuzz: ${execs:-0} execs in ${took:-$secs} s, corpus $before -> $after inputs, $crashes crashes"
[ "$rc" -eq 0 ]
