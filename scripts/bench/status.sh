#!/usr/bin/env bash
# Benchmark reading a big fleet: `status --json`, `status` (table),
# `status --verbose --all`, and serve-api's GET /api/servers,
# /api/servers?status=offline and /metrics (--metrics-per-server=false),
# against Postgres.
#
# Fills a database with N servers (default 100,000; scripts/bench/fleetfill:
# 2 % OFFLINE, 2 % WARNING, one evaluation), then runs each read R times
# (default 5) and prints the median wall time (and, for the CLI, of its
# CPU seconds) and the peak RSS (the CLI
# under /usr/bin/time -v; serve-api's VmHWM after its requests).
# The machine may be shared: compare medians of runs made back to back.
#
# Usage: scripts/bench/status.sh [N] [R]
# Env:   BENCH_PG   admin URL (default postgres://postgres@127.0.0.1:5432/postgres)
#        BENCH_KEEP database name to reuse (filled on first use, kept after)
set -euo pipefail

servers="${1:-100000}"
runs="${2:-5}"
admin_url="${BENCH_PG:-postgres://postgres@127.0.0.1:5432/postgres}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
work="$(mktemp -d)"
db="${BENCH_KEEP:-hbstatusbench_$$}"
serve_pid=""

cleanup() {
	if [[ -n "${serve_pid}" ]]; then
		kill "${serve_pid}" 2>/dev/null || true
		wait "${serve_pid}" 2>/dev/null || true
	fi
	if [[ -z "${BENCH_KEEP:-}" ]]; then
		psql -q "${admin_url}" -c "DROP DATABASE IF EXISTS ${db} WITH (FORCE)" >/dev/null 2>&1 || true
	fi
	rm -rf "${work}"
}
trap cleanup EXIT

echo "building..."
(cd "${root}" && go build -o "${work}/heartbeat" ./cmd/heartbeat &&
	go build -o "${work}/fleetfill" ./scripts/bench/fleetfill)
hb="${work}/heartbeat"
export HEARTBEAT_DB="${admin_url%/*}/${db}"

if [[ "$(psql -qAt "${admin_url}" -c "SELECT count(*) FROM pg_database WHERE datname = '${db}'")" == 0 ]]; then
	psql -q "${admin_url}" -c "CREATE DATABASE ${db}" >/dev/null
	"${hb}" migrate >/dev/null
	echo "filling ${servers} servers..."
	"${work}/fleetfill" -db "${HEARTBEAT_DB}" -n "${servers}"
	# What autovacuum would do within a minute; a cluster with it off
	# (test clusters) otherwise plans the status join for an empty alerts
	# table and takes 30 s.
	psql -q "${HEARTBEAT_DB}" -c "ANALYZE" >/dev/null
fi
"${hb}" migrate >/dev/null
echo "fleet: $(psql -qAt "${HEARTBEAT_DB}" -c "SELECT count(*) FROM servers") servers"

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

# cli NAME ARGS...: median seconds and peak RSS (MiB) of `heartbeat ARGS`.
cli() {
	local name="$1" times=() cpus=() rss=0 wall user sys kib
	shift
	for _ in $(seq "${runs}"); do
		/usr/bin/time -o "${work}/time" -f '%e %U %S %M' "${hb}" "$@" >/dev/null 2>&1 || true
		read -r wall user sys kib < <(tail -1 "${work}/time")
		times+=("${wall}")
		cpus+=("$(awk -v u="${user}" -v s="${sys}" 'BEGIN { print u + s }')")
		if ((kib > rss)); then rss="${kib}"; fi
	done
	# CPU seconds (user + sys) vary less than wall time on a shared box.
	printf '%-28s median %6.2fs  CPU %5.2fs  peak RSS %5d MiB\n' "${name}" \
		"$(printf '%s\n' "${times[@]}" | median)" "$(printf '%s\n' "${cpus[@]}" | median)" $((rss / 1024))
}

# The --all flag exists from the change that added it; earlier binaries
# list every row anyway.
all=""
if "${hb}" status --help | grep -c -- '--all' >/dev/null; then all="--all"; fi
cli "status --json" status --json
cli "status" status
cli "status --verbose ${all}" status --verbose ${all}

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# Per-server series off, as README "Metrics" advises for big fleets: with
# them, 100,000 servers make over a million series per scrape.
"${hb}" serve-api --listen "127.0.0.1:${port}" --evaluate-every 0 --metrics-per-server=false 2>"${work}/serve.log" &
serve_pid=$!
for _ in $(seq 100); do
	curl -fsS "http://127.0.0.1:${port}/healthz" >/dev/null 2>&1 && break
	kill -0 "${serve_pid}" 2>/dev/null || { cat "${work}/serve.log" >&2; exit 1; }
	sleep 0.1
done

# http NAME PATH: median seconds of GET PATH.
http() {
	local times=()
	for _ in $(seq "${runs}"); do
		times+=("$(curl -sS -o /dev/null -w '%{time_total}' "http://127.0.0.1:${port}$2")")
	done
	printf '%-28s median %6.2fs  (HTTP %s)\n' "$1" "$(printf '%s\n' "${times[@]}" | median)" \
		"$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:${port}$2")"
}
http "GET /api/servers" /api/servers
http "GET /api/servers?status=offline" "/api/servers?status=offline"
http "GET /metrics (totals only)" /metrics
printf '%-28s peak RSS %5d MiB\n' "serve-api" $(($(awk '/VmHWM/ { print $2 }' "/proc/${serve_pid}/status") / 1024))
echo "(${servers} servers, ${runs} runs each, $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg))"
