#!/usr/bin/env bash
# lighttpd.sh: a real Debian server, end to end through quiesce-run: starts
# lighttpd (Debian package 'lighttpd') on 127.0.0.1 with a config written
# here, waits for its port, fetches a page while it runs, then checks its
# graceful shutdown (SIGINT: finish requests, then exit 0) within the bound.
#
# usage: lighttpd.sh QUIESCE_RUN FREEPORT OUTDIR
# Exit status: quiesce-run's (0 pass), 1 on a failed check, 77 when
# lighttpd is not installed (CTest SKIP_RETURN_CODE).
set -u
qr=$1 freeport=$2 outdir=$3

lighttpd=$(command -v lighttpd || true)
[ -n "$lighttpd" ] || [ ! -x /usr/sbin/lighttpd ] || lighttpd=/usr/sbin/lighttpd
if [ -z "$lighttpd" ]; then
	echo "lighttpd.sh: skipped: install the Debian package 'lighttpd'"
	exit 77
fi

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
port=$("$freeport") || exit 1
mkdir -p "$dir/www" "$outdir"
echo "quiesce lighttpd test" >"$dir/www/index.html"
cat >"$dir/lighttpd.conf" <<EOF
server.document-root = "$dir/www"
server.bind          = "127.0.0.1"
server.port          = $port
server.errorlog      = "$dir/error.log"
server.max-worker    = 0
index-file.names     = ( "index.html" )
mimetype.assign      = ( ".html" => "text/html" )
EOF
"$lighttpd" -tt -f "$dir/lighttpd.conf" || {
	echo "lighttpd.sh: lighttpd rejects the test config"
	exit 1
}

# A client fetches the page while the server runs, so the shutdown happens
# with real traffic behind it (bounded: 50 tries, 100 ms apart).
(
	for _ in $(seq 50); do
		if { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then
			printf 'GET / HTTP/1.0\r\nHost: localhost\r\n\r\n' >&3
			grep -q "quiesce lighttpd test" <&3 && echo fetched >"$dir/fetched"
			exec 3>&-
			break
		fi
		sleep 0.1
	done
) &
client=$!

"$qr" --ready-port "$port" --cancel-after 300ms --signal INT --bound 5s \
	--junit "$outdir/lighttpd.xml" --json "$outdir/lighttpd.json" \
	--svg "$outdir/lighttpd.svg" -- "$lighttpd" -D -f "$dir/lighttpd.conf"
rc=$?
wait "$client"
[ -f "$dir/fetched" ] || {
	echo "lighttpd.sh: the page was never served"
	exit 1
}
echo "lighttpd.sh: page served; quiesce-run exit status $rc"
exit $rc
