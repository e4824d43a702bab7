#!/usr/bin/env bash
# ci/soak.sh: hunts flaky tests. Runs the stress-labelled tests once, then the
# whole unit suite SOAK_RUNS times (default 200) with every core kept busy by
# `yes`, so that timing-dependent tests meet a loaded machine. Prints how
# often each test failed; exits non-zero if any did.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${SOAK_RUNS:-200}

bash ci/deps.sh
cmake --preset dev >/dev/null
cmake --build --preset dev

status=0
echo "=== stress"
ctest --test-dir build/dev -L stress --no-tests=ignore --output-on-failure || status=1

# Load every core; the trap ends exactly the processes started here.
hogs=()
cleanup()
{
	[ ${#hogs[@]} -eq 0 ] && return 0
	kill "${hogs[@]}" 2>/dev/null || true
	wait "${hogs[@]}" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq "$(nproc)"); do
	yes >/dev/null &
	hogs+=($!)
done

log=build/dev/soak.log
: >"$log"
flaky_runs=0
for i in $(seq "$runs"); do
	if ! ctest --test-dir build/dev -L unit -LE stress -j2 --output-on-failure \
		>build/dev/soak-run.log 2>&1; then
		flaky_runs=$((flaky_runs + 1))
		# CTest lists failures as "  12 - quiesce.ctx (Failed)".
		grep -E '^[[:space:]]+[0-9]+ - ' build/dev/soak-run.log |
			sed -E 's/^[[:space:]]+[0-9]+ - ([^ ]+).*/\1/' >>"$log"
		cp build/dev/soak-run.log "build/dev/soak-fail-$i.log"
	fi
	printf '\rrun %d/%d, %d with failures' "$i" "$runs" "$flaky_runs"
done
echo

if [ -s "$log" ]; then
	echo "=== flaky tests (failures over $runs runs; logs in build/dev/soak-fail-*.log)"
	sort "$log" | uniq -c | sort -rn
	status=1
fi
echo "$((runs - flaky_runs)) passed, $flaky_runs failed"
exit "$status"
