#!/usr/bin/env bash
# ci/test.sh: every test quiesce has, the way CI runs them. Installs what it
# needs, then runs each stage through the CMake presets:
#   dev       plain Debug build, -Werror: unit and faketime tests
#   valgrind  the memcheck variant of every suite
#   helgrind  the helgrind variant of every suite (data races, lock order)
#   asan      ASan + UBSan (leak checks on)
#   tsan      ThreadSanitizer
#   consumer  ci/consumer.sh, when it exists (builds against the installed package)
#   format    clang-format over harness include suites tools
#   fuzz      a 20 s libFuzzer smoke run of the context model (ci/fuzz.sh)
# A failing stage does not stop the others, so the summary is complete. The
# last line is "N passed, N failed": N counts CTest tests, plus one for each
# of consumer, format and fuzz, plus one failure for a preset that did not
# build.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

bash ci/deps.sh

passed=0
failed=0
timings=()

# tally LOG: add the counts from CTest's "N% tests passed, F tests failed out
# of T" line; a run without that line (a crash, no tests) is one failure.
tally()
{
	local line
	line=$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$1" | tail -n 1 || true)
	if [[ $line =~ ([0-9]+)\ tests\ failed\ out\ of\ ([0-9]+) ]]; then
		failed=$((failed + BASH_REMATCH[1]))
		passed=$((passed + BASH_REMATCH[2] - BASH_REMATCH[1]))
	else
		echo "ci/test.sh: no CTest summary in $1" >&2
		failed=$((failed + 1))
	fi
}

# build PRESET: configure and build, output kept in build/PRESET/build.log
# and shown only on failure (warnings are errors, so success is silent).
build()
{
	local preset=$1 log=$root/build/$1/build.log
	mkdir -p "build/$preset"
	if cmake --preset "$preset" >"$log" 2>&1 &&
		cmake --build --preset "$preset" >>"$log" 2>&1; then
		return 0
	fi
	cat "$log"
	echo "ci/test.sh: the $preset preset did not build" >&2
	failed=$((failed + 1))
	return 1
}

# run_ctest PRESET [WRAPPER...]: the preset's tests (its label filter and
# sanitizer options live in CMakePresets.json), log and JUnit in
# build/PRESET/. Returns CTest's status; the caller tallies the log.
run_ctest()
{
	local preset=$1 rc=0
	shift
	"$@" ctest --preset "$preset" \
		--output-junit "$root/build/$preset/junit.xml" 2>&1 |
		tee "$root/build/$preset/ctest.log" || rc=$?
	return "$rc"
}

preset_stage()
{
	local rc=0
	build "$1" || return 1
	run_ctest "$1" || rc=$?
	tally "$root/build/$1/ctest.log"
	return "$rc"
}

tsan_stage()
{
	local rc=0
	build tsan || return 1
	run_ctest tsan || rc=$?
	# gcc 12's TSan aborts with "unexpected memory mapping" when the kernel
	# randomises mappings with more entropy than it expects; without ASLR
	# the layout is the one it knows. Rerun only when that happened, so a
	# real failure is never hidden.
	if [ "$rc" -ne 0 ] &&
		grep -q 'unexpected memory mapping' "$root/build/tsan/ctest.log"; then
		echo "ci/test.sh: TSan mapping failure; rerunning without ASLR" >&2
		rc=0
		run_ctest tsan setarch "$(uname -m)" -R || rc=$?
	fi
	tally "$root/build/tsan/ctest.log"
	return "$rc"
}

consumer_stage()
{
	[ -f ci/consumer.sh ] || return 0
	if bash ci/consumer.sh; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		return 1
	fi
}

format_stage()
{
	local files
	mapfile -t files < <(find harness include suites tools \
		-name '*.[ch]' -type f | sort)
	if [ ${#files[@]} -eq 0 ] ||
		clang-format --dry-run --Werror "${files[@]}"; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		return 1
	fi
}

# fuzz_stage: ci/fuzz.sh 20: builds suites/fuzz_model.c with clang
# (-fsanitize=fuzzer,address,undefined, from the library's sources, into
# build/fuzz) and fuzzes for 20 s from a temporary copy of the corpus
# suites/corpus/model. Counts as one test; ~30 s with the build. The long
# run is ci/soak.sh's.
fuzz_stage()
{
	if bash ci/fuzz.sh 20; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		return 1
	fi
}

stage()
{
	local name=$1 t0=$SECONDS status=ok
	shift
	echo "=== $name"
	"$@" || status=FAILED
	timings+=("$(printf '%-9s %5ds  %s' "$name" $((SECONDS - t0)) "$status")")
}

stage dev preset_stage dev
stage valgrind preset_stage valgrind
stage helgrind preset_stage helgrind
stage asan preset_stage asan
stage tsan tsan_stage
stage consumer consumer_stage
stage format format_stage
stage fuzz fuzz_stage

echo "=== timings"
printf '%s\n' "${timings[@]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
