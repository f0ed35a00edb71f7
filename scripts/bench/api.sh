#!/usr/bin/env bash
# Benchmark serve-api's push endpoint against its floor, on one machine.
#
# Creates a fresh Postgres database, registers N servers (default 1,000),
# each with its own API token, starts `heartbeat serve-api` on it and runs,
# for SECONDS each (default 10) at C connections (default 64):
#   serve-api  scripts/bench/apiload: authenticated POST /api/heartbeat/ID/
#              for random servers, over HTTP keep-alive connections
#   pgbench    pgbench -n -c C -j 2 -T SECONDS with the single-row UPDATE a
#              naive handler would run per request, for random ids: the
#              floor of one statement and one commit per heartbeat
# It prints requests/s, p50 and p99 for both and the ratio. The load
# generator, the server and Postgres share the CPU; compare the ratio.
#
# Usage: scripts/bench/api.sh [N] [SECONDS] [C]
# Env:   BENCH_PG (admin URL, default postgres://postgres@127.0.0.1:5432/postgres)
set -euo pipefail

servers="${1:-1000}"
seconds="${2:-10}"
conns="${3:-64}"
admin_url="${BENCH_PG:-postgres://postgres@127.0.0.1:5432/postgres}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
work="$(mktemp -d)"
db="hbapibench_$$"
serve_pid=""

cleanup() {
	if [[ -n "${serve_pid}" ]]; then
		kill "${serve_pid}" 2>/dev/null || true
		wait "${serve_pid}" 2>/dev/null || true
	fi
	psql -q "${admin_url}" -c "DROP DATABASE IF EXISTS ${db} WITH (FORCE)" >/dev/null 2>&1 || true
	rm -rf "${work}"
}
trap cleanup EXIT

echo "building..."
(cd "${root}" && go build -o "${work}/heartbeat" ./cmd/heartbeat &&
	go build -o "${work}/apiload" ./scripts/bench/apiload)
hb="${work}/heartbeat"

psql -q "${admin_url}" -c "CREATE DATABASE ${db}" >/dev/null
export HEARTBEAT_DB="${admin_url%/*}/${db}"
"${hb}" migrate >/dev/null

echo "registering ${servers} servers with tokens..."
{
	echo "name,host,port,user,key"
	for i in $(seq "${servers}"); do
		printf 'bench-%05d,10.%d.%d.%d,,,\n' "${i}" $((i / 65536 % 256)) $((i / 256 % 256)) $((i % 256))
	done
} >"${work}/fleet.csv"
"${hb}" servers import "${work}/fleet.csv" >/dev/null
# `servers token` prints the token alone on stdout; one process per server,
# sixteen at a time. Each line is one short write, so lines never mix.
# shellcheck disable=SC2016 # $1 and $2 expand in the inner sh, on purpose.
psql -qAt "${HEARTBEAT_DB}" -c "SELECT id FROM servers ORDER BY id" |
	xargs -P 16 -I '{}' sh -c 'printf "%s,%s\n" "$1" "$("$2" servers token "$1" 2>/dev/null)"' _ '{}' "${hb}" \
		>"${work}/tokens.csv"
if [[ "$(grep -c ',.\{43\}$' "${work}/tokens.csv")" -ne "${servers}" ]]; then
	echo "bench: could not issue ${servers} tokens" >&2
	exit 1
fi

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"${hb}" serve-api --listen "127.0.0.1:${port}" 2>"${work}/serve.log" &
serve_pid=$!
for _ in $(seq 100); do
	curl -fsS "http://127.0.0.1:${port}/healthz" >/dev/null 2>&1 && break
	kill -0 "${serve_pid}" 2>/dev/null || { cat "${work}/serve.log" >&2; exit 1; }
	sleep 0.1
done

echo "serve-api: ${conns} connections, ${seconds}s..."
api="$("${work}/apiload" -url "http://127.0.0.1:${port}" -tokens "${work}/tokens.csv" -c "${conns}" -d "${seconds}s")"
echo "  ${api}"
kill "${serve_pid}"
wait "${serve_pid}" || true
serve_pid=""

# Every server now has a heartbeat row, so every UPDATE hits one.
cat >"${work}/update.sql" <<SQL
\set id random(1, ${servers})
UPDATE heartbeats SET last_heartbeat = now() WHERE server_id = :id;
SQL
echo "pgbench: ${conns} clients, ${seconds}s..."
(cd "${work}" && pgbench -n -c "${conns}" -j 2 -T "${seconds}" -f update.sql -l --log-prefix=pgb "${HEARTBEAT_DB}" >pgbench.out 2>&1) ||
	{ cat "${work}/pgbench.out" >&2; exit 1; }
# Per-transaction logs: the third field is the latency in microseconds.
pg="$(cat "${work}"/pgb.* | awk '{print $3}' | sort -n | awk -v secs="${seconds}" '
	{ lat[NR] = $1 }
	END {
		p50 = lat[int(NR * 0.50) + 1]; p99 = lat[int(NR * 0.99) + 1]
		printf "requests=%d rps=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f", NR, NR / secs, p50 / 1000, p99 / 1000, lat[NR] / 1000
	}')"
echo "  ${pg}"

field() { sed -n "s/.*\\b$1=\\([0-9.]*\\).*/\\1/p" <<<"$2"; }
api_rps="$(field rps "${api}")"
pg_rps="$(field rps "${pg}")"
echo
printf '%-10s %12s %10s %10s\n' "" "requests/s" "p50 ms" "p99 ms"
printf '%-10s %12s %10s %10s\n' "serve-api" "${api_rps}" "$(field p50_ms "${api}")" "$(field p99_ms "${api}")"
printf '%-10s %12s %10s %10s\n' "pgbench" "${pg_rps}" "$(field p50_ms "${pg}")" "$(field p99_ms "${pg}")"
awk -v a="${api_rps}" -v p="${pg_rps}" 'BEGIN { printf "ratio serve-api / pgbench: %.2fx (%d servers, %d connections, %ds each, %d CPUs)\n", a / p, '"${servers}"', '"${conns}"', '"${seconds}"', '"$(nproc)"' }'
