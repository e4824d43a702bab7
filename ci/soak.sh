#!/usr/bin/env bash
# ci/soak.sh: hunts flaky tests (issue #9). Stages, in order:
#   stress  the stress-labelled tests once: quiesce.model.stress, the model
#           checker at QC_MODEL_OPS=10000000 operations
#   fuzz    ci/fuzz.sh for FUZZ_SECONDS (default 600): the libFuzzer target
#           over the same model, with ASan and UBSan
#   soak    the whole unit suite SOAK_RUNS times in a row (default 200)
#   chaos   the unit suite SOAK_CHAOS_RUNS more times (default 50), each
#           under a new chaos seed: QC_CHAOS_SEED=SOAK_CHAOS_SEED (default
#           1), +1, +2, ... (quiesce then injects seeded delays at its wait,
#           wake and cancel points)
# soak and chaos run with every core kept busy by `yes`, so timing-dependent
# tests meet a loaded machine. A failure is a flake to fix, never a test to
# retry: the script prints how often each test failed (with the chaos seeds
# that replay it), keeps the logs, and exits non-zero. Zero is expected.
#
# SOAK_BUILD (default build/dev) is the build tree, configured from the dev
# preset; SOAK_SKIP (e.g. "fuzz stress") leaves stages out.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
runs=${SOAK_RUNS:-200}
chaos_runs=${SOAK_CHAOS_RUNS:-50}
seed0=${SOAK_CHAOS_SEED:-1}
build=${SOAK_BUILD:-build/dev}
[[ $build == /* ]] || build=$root/$build
skip=" ${SOAK_SKIP:-} "

bash ci/deps.sh
logs=$build/soak
mkdir -p "$build"
# Warnings are errors: a build that succeeds is silent.
if ! { cmake --preset dev -B "$build" && cmake --build "$build" -j "$(nproc)"; } \
	>"$build/soak-build.log" 2>&1; then
	cat "$build/soak-build.log"
	echo "ci/soak.sh: the build failed" >&2
	exit 1
fi
rm -rf "$logs"
mkdir -p "$logs"

status=0
summary=()

# skipped STAGE: true when SOAK_SKIP names it.
skipped()
{
	[[ $skip == *" $1 "* ]]
}

if ! skipped stress; then
	echo "=== stress"
	t0=$SECONDS
	if ctest --test-dir "$build" -L stress --no-tests=ignore \
		--output-on-failure >"$logs/stress.log" 2>&1; then
		summary+=("stress: passed ($((SECONDS - t0)) s)")
	else
		cat "$logs/stress.log"
		summary+=("stress: FAILED (log: $logs/stress.log)")
		status=1
	fi
	grep -E 'tests passed|Test +#' "$logs/stress.log" || true
fi

if ! skipped fuzz; then
	echo "=== fuzz (${FUZZ_SECONDS:-600} s)"
	if FUZZ_DIR=${FUZZ_DIR:-$build/fuzz} \
		bash ci/fuzz.sh "${FUZZ_SECONDS:-600}" >"$logs/fuzz.log" 2>&1; then
		summary+=("$(tail -n 1 "$logs/fuzz.log")")
	else
		tail -n 40 "$logs/fuzz.log"
		summary+=("fuzz: FAILED: $(tail -n 1 "$logs/fuzz.log")")
		status=1
	fi
	tail -n 1 "$logs/fuzz.log"
fi

# Load every core; the trap ends exactly the processes started here.
hogs=()
cleanup()
{
	[ ${#hogs[@]} -eq 0 ] || kill "${hogs[@]}" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq "$(nproc)"); do
	yes >/dev/null &
	hogs+=($!)
done

flakes=$logs/flakes.txt
: >"$flakes"

# unit_runs NAME COUNT [SEED0]: the unit suite COUNT times (under chaos
# seeds SEED0, SEED0+1, ... when SEED0 is given); failures go to $flakes
# as "<test>[ (QC_CHAOS_SEED=<seed>)]", logs to $logs/NAME-fail-<i>.log.
unit_runs()
{
	local name=$1 count=$2 first=${3:-} failed=0 i seed env t0=$SECONDS
	[ "$count" -gt 0 ] || return 0
	echo "=== $name ($count runs of the unit suite, every core loaded)"
	for i in $(seq "$count"); do
		env=()
		seed=""
		if [ -n "$first" ]; then
			seed=$((first + i - 1))
			env=(QC_CHAOS_SEED="$seed")
		fi
		if ! env "${env[@]}" ctest --test-dir "$build" -L unit -LE stress \
			-j "$(nproc)" --output-on-failure \
			>"$logs/run.log" 2>&1; then
			failed=$((failed + 1))
			# CTest lists failures as "  12 - quiesce.ctx (Failed)".
			grep -E '^[[:space:]]+[0-9]+ - ' "$logs/run.log" |
				sed -E 's/^[[:space:]]+[0-9]+ - ([^ ]+).*/\1/' |
				sed -e "s/\$/${seed:+ (QC_CHAOS_SEED=$seed)}/" \
					>>"$flakes"
			cp "$logs/run.log" "$logs/$name-fail-$i.log"
		fi
		printf '\r%s: run %d/%d%s, %d with failures' "$name" "$i" \
			"$count" "${seed:+ (seed $seed)}" "$failed"
	done
	echo
	summary+=("$name: $count runs, $failed with failures ($((SECONDS - t0)) s)")
	[ "$failed" -eq 0 ] || status=1
}

skipped soak || unit_runs soak "$runs"
skipped chaos || unit_runs chaos "$chaos_runs" "$seed0"

echo "=== summary"
printf '%s\n' "${summary[@]}"
if [ -s "$flakes" ]; then
	echo "=== flaky tests (logs in $logs/*-fail-*.log)"
	sort "$flakes" | uniq -c | sort -rn
fi
exit "$status"
