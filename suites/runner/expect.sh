#!/usr/bin/env bash
# expect.sh: runs one command and checks its exit status, its output and the
# files it wrote; the CTest driver of quiesce-run's end-to-end tests.
#
# usage: expect.sh EXIT [CHECK...] -- COMMAND [ARGS...]
#   EXIT         the exit status COMMAND must return
#   PATTERN      an extended regex that COMMAND's stdout+stderr must match
#   !PATTERN     one that it must not match
#   xml:FILE     FILE is well-formed XML
#   junit:FILE   FILE is well-formed JUnit XML: testsuites > testsuite > testcase
#   json:FILE    FILE is valid JSON
#   svg:FILE     rsvg-convert renders FILE to a PNG
#   gone:NAME    no process named NAME (its comm) is left afterwards
#   needs:PROG   skip the test (exit 77) unless PROG is installed
# In COMMAND and its ARGS, @PORT@ becomes a TCP port on 127.0.0.1 that was
# free a moment ago (printed by $QR_FREEPORT).
# Exit status: 0 all checks passed, 1 one failed, 77 skipped.
set -u

fail() {
	echo "expect.sh: FAILED: $*" >&2
	exit 1
}

[ $# -ge 3 ] || fail "usage: expect.sh EXIT [CHECK...] -- COMMAND [ARGS...]"
want=$1
shift
checks=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
	checks+=("$1")
	shift
done
[ "${1:-}" = "--" ] || fail "missing '--' before the command"
shift

for c in "${checks[@]}"; do
	case $c in
	needs:*)
		command -v "${c#needs:}" >/dev/null 2>&1 || [ -x "${c#needs:}" ] || {
			echo "expect.sh: skipped: ${c#needs:} is not installed"
			exit 77
		}
		;;
	esac
done

cmd=("$@")
if [[ "${cmd[*]}" == *@PORT@* ]]; then
	port=$("${QR_FREEPORT:?QR_FREEPORT must name the freeport helper}") ||
		fail "no free port"
	cmd=("${cmd[@]//@PORT@/$port}")
fi

out=$(mktemp)
trap 'rm -f "$out" "$out.png"' EXIT
"${cmd[@]}" >"$out" 2>&1
rc=$?
cat "$out"
echo "expect.sh: exit status $rc (want $want)"
[ "$rc" = "$want" ] || fail "exit status $rc, wanted $want"

xml_ok() { # FILE [XPATH-COUNT-EXPRESSION]
	if command -v xmllint >/dev/null 2>&1; then
		xmllint --noout "$1" || return 1
		[ -z "${2:-}" ] || [ "$(xmllint --xpath "$2" "$1")" -ge 1 ]
	else
		python3 - "$1" "${2:-}" <<'EOF'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
if sys.argv[2]:
    assert root.tag == "testsuites", root.tag
    assert root.find("testsuite/testcase") is not None
EOF
	fi
}

for c in "${checks[@]}"; do
	case $c in
	needs:*) ;;
	xml:*) xml_ok "${c#xml:}" || fail "${c#xml:} is not well-formed XML" ;;
	junit:*)
		xml_ok "${c#junit:}" 'count(/testsuites/testsuite/testcase)' ||
			fail "${c#junit:} is not JUnit XML"
		;;
	json:*)
		python3 -m json.tool "${c#json:}" >/dev/null ||
			fail "${c#json:} is not valid JSON"
		;;
	svg:*)
		rsvg-convert -o "$out.png" "${c#svg:}" ||
			fail "rsvg-convert could not render ${c#svg:}"
		[ "$(head -c 4 "$out.png" | od -An -c | tr -d ' ')" = '211PNG' ] ||
			fail "rsvg-convert made no PNG of ${c#svg:}"
		;;
	gone:*)
		sleep 0.1
		for f in /proc/[0-9]*/comm; do
						[ "$(cat "$f" 2>/dev/null)" = "${c#gone:}" ] &&
				fail "process ${c#gone:} ($f) was left behind:" \
					"$(grep -E '^(State|PPid)' "${f%comm}status" 2>/dev/null | tr '\n\t' '  ')"
		done
		;;
	!*) grep -Eq -- "${c#!}" "$out" && fail "output matches '${c#!}'" ;;
	*) grep -Eq -- "$c" "$out" || fail "output does not match '$c'" ;;
	esac
done
echo "expect.sh: all checks passed"
