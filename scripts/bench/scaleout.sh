#!/usr/bin/env bash
# Several probe hosts sharing one fleet through Postgres leases, on one
# machine.
#
# Starts an in-process fleet of N `ok` SSH servers (cmd/sshfleet, default
# 5,000) on 127.0.0.1, imports it into a fresh Postgres database, and for 1,
# 2 and 4 probe processes (each its own --probe-host) makes the whole fleet
# due, starts them together and prints: servers probed, duplicates (must be
# 0), missed (must be 0), probes/s (wall time from start to the last exit)
# and each process's share. Then it starts two processes, kills one
# (SIGKILL) once it holds leases, and shows how long until the survivor's
# next runs have probed every server the dead one had claimed: its leases
# expire after 2 x --timeout + 6 s.
#
# Every process shares the CPU with the others and with the fleet, so read
# the figures as "no double work, no misses, the cost of coordinating", not
# as a speed-up.
#
# Usage: scripts/bench/scaleout.sh [N] [TIMEOUT]
# Env:   BENCH_PG (admin URL, default postgres://postgres@127.0.0.1:5432/postgres)
set -euo pipefail

servers="${1:-5000}"
timeout="${2:-2s}"
admin_url="${BENCH_PG:-postgres://postgres@127.0.0.1:5432/postgres}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
work="$(mktemp -d)"
db="hbscale_$$"
fleet_pid=""

cleanup() {
	if [[ -n "${fleet_pid}" ]]; then
		kill "${fleet_pid}" 2>/dev/null || true
		wait "${fleet_pid}" 2>/dev/null || true
	fi
	psql -q "${admin_url}" -c "DROP DATABASE IF EXISTS ${db} WITH (FORCE)" >/dev/null 2>&1 || true
	rm -rf "${work}"
}
trap cleanup EXIT

command -v jq >/dev/null || { echo "bench: needs jq" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)"
if (($(ulimit -n) < servers + 4096)); then
	echo "bench: ulimit -n is $(ulimit -n); ${servers} servers need about $((servers + 4096))" >&2
	exit 1
fi

echo "building..."
(cd "${root}" && go build -o "${work}/heartbeat" ./cmd/heartbeat && go build -o "${work}/sshfleet" ./cmd/sshfleet)

echo "starting ${servers} SSH servers..."
"${work}/sshfleet" --count "${servers}" --shared-host-key --client-key "${work}/key" \
	--csv "${work}/fleet.csv" --ready-file "${work}/ready" 2>"${work}/fleet.log" &
fleet_pid=$!
for _ in $(seq 600); do
	[[ -e "${work}/ready" ]] && break
	kill -0 "${fleet_pid}" 2>/dev/null || { cat "${work}/fleet.log" >&2; exit 1; }
	sleep 0.1
done
[[ -e "${work}/ready" ]] || { echo "bench: fleet did not start" >&2; exit 1; }

psql -q "${admin_url}" -c "CREATE DATABASE ${db}" >/dev/null
db_url="${admin_url%/*}/${db}"
export DATABASE_URL="${db_url}"
"${work}/heartbeat" migrate >/dev/null
"${work}/heartbeat" servers import "${work}/fleet.csv" >/dev/null

# due_now: the next runs find the whole fleet due (as at a tick).
due_now() {
	psql -q "${db_url}" -c "UPDATE probe_leases SET due_at = '-infinity', lease_until = NULL, run_id = NULL" >/dev/null
}

# start_probe NAME: one probe process in the background ($! is its pid),
# its JSON to ${work}/NAME.json.
start_probe() {
	"${work}/heartbeat" probe-ssh --json --key "${work}/key" --timeout "${timeout}" --probe-host "$1" \
		>"${work}/$1.json" 2>"${work}/$1.log" &
}

printf '%-6s %8s %10s %7s %9s  %s\n' procs probed duplicates missed probes/s "share per process"
for procs in 1 2 4; do
	due_now
	pids=()
	start="$(date +%s.%N)"
	for i in $(seq "${procs}"); do
		start_probe "p${procs}-${i}"
		pids+=($!)
	done
	for pid in "${pids[@]}"; do wait "${pid}"; done
	wall="$(echo "$(date +%s.%N) - ${start}" | bc -l)"
	shares=""
	: >"${work}/ids"
	for i in $(seq "${procs}"); do
		jq -r '.results[].server_id' "${work}/p${procs}-${i}.json" >>"${work}/ids"
		shares+="$(jq -r '.probed' "${work}/p${procs}-${i}.json") "
	done
	probed="$(wc -l <"${work}/ids")"
	unique="$(sort -u "${work}/ids" | wc -l)"
	printf '%-6s %8d %10d %7d %9.0f  %s\n' "${procs}" "${unique}" "$((probed - unique))" "$((servers - unique))" \
		"$(echo "${unique} / ${wall}" | bc -l)" "${shares}"
done

echo
echo "a process killed mid-run (SIGKILL) leaves its leases to the survivor:"
due_now
tick_start="$(psql -qAt "${db_url}" -c "SELECT now()")"
start_probe victim
victim=$!
start_probe survivor-1
survivor=$!
# Kill the victim once it holds leases.
for _ in $(seq 200); do
	held="$(psql -qAt "${db_url}" -c "SELECT count(*) FROM probe_leases l JOIN probe_runs r ON r.id = l.run_id WHERE r.host = 'victim'")"
	((held > 0)) && break
	sleep 0.02
done
kill -9 "${victim}" 2>/dev/null || true
wait "${victim}" 2>/dev/null || true
killed_at="$(date +%s.%N)"
held="$(psql -qAt "${db_url}" -c "SELECT count(*) FROM probe_leases l JOIN probe_runs r ON r.id = l.run_id WHERE r.host = 'victim'")"
echo "  victim killed holding ${held} leases it had not finished"
wait "${survivor}"
round=1
while true; do
	missed="$(psql -qAt "${db_url}" -c "SELECT count(*) FROM servers s LEFT JOIN heartbeats h ON h.server_id = s.id
		WHERE h.last_probe IS NULL OR h.last_probe < '${tick_start}'")"
	after="$(echo "$(date +%s.%N) - ${killed_at}" | bc -l)"
	printf '  %5.1fs after the kill: %d servers not probed this tick\n' "${after}" "${missed}"
	((missed == 0)) && break
	if (($(echo "${after} > 60" | bc -l))); then
		echo "bench: the victim's servers were not taken over within 60 s" >&2
		exit 1
	fi
	sleep 2
	round=$((round + 1))
	start_probe "survivor-${round}"
	wait $!
done
