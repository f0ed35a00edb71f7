#!/usr/bin/env bash
# Peak memory and CPU of one probe-ssh run on a big store.
#
# Starts an in-process fleet of REACHABLE `ok` SSH servers (cmd/sshfleet,
# default 20,000, in processes of 10,000 on fixed ports below the ephemeral
# range), imports it into a fresh Postgres database, adds servers up to
# TOTAL (default 100,000) with scripts/bench/fleetfill, points those extra
# servers at a closed port on 127.0.0.1 (a refused connection: cheap,
# so the run is about the store and the prober, not about timeouts), and
# runs `heartbeat probe-ssh` RUNS times (default 3) under /usr/bin/time -v,
# each with the whole fleet due. It prints per run: servers claimed and
# answered, wall time, user+sys CPU seconds, CPU µs per probe and peak RSS,
# then the medians.
#
# Usage: scripts/bench/probemem.sh [REACHABLE] [TOTAL] [RUNS]
# Env:   BENCH_PG (admin URL, default postgres://postgres@127.0.0.1:5432/postgres)
#        PROBE_FLAGS (extra probe-ssh flags, e.g. "--concurrency 512")
set -euo pipefail

reachable="${1:-20000}"
total="${2:-100000}"
runs="${3:-3}"
admin_url="${BENCH_PG:-postgres://postgres@127.0.0.1:5432/postgres}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
work="$(mktemp -d)"
db="hbmem_$$"
fleet_pids=()

cleanup() {
	for pid in "${fleet_pids[@]}"; do
		kill "${pid}" 2>/dev/null || true
		wait "${pid}" 2>/dev/null || true
	done
	psql -q "${admin_url}" -c "DROP DATABASE IF EXISTS ${db} WITH (FORCE)" >/dev/null 2>&1 || true
	rm -rf "${work}"
}
trap cleanup EXIT

command -v jq >/dev/null || { echo "bench: needs jq" >&2; exit 1; }
ulimit -n "$(ulimit -Hn)"

echo "building..."
(cd "${root}" && go build -o "${work}/heartbeat" ./cmd/heartbeat && go build -o "${work}/sshfleet" ./cmd/sshfleet &&
	go build -o "${work}/fleetfill" ./scripts/bench/fleetfill)

# Fleets of at most 10,000 (one fd per listener plus their connections
# stays under a 20,000 fd limit), on consecutive free ports from 7000 up so no
# listener takes an ephemeral port the prober's connections need.
echo "starting ${reachable} SSH servers..."
: >"${work}/fleet.csv"
used="$(ss -ltnH | awk '{print $4}' | sed 's/.*://' | sort -nu)"
port=7000
part=0
left="${reachable}"
while ((left > 0)); do
	n=$((left < 10000 ? left : 10000))
	# Stop short of a port another program listens on.
	for u in ${used}; do
		if ((u >= port && u < port + n)); then n=$((u - port)); break; fi
	done
	if ((n == 0)); then port=$((port + 1)); continue; fi
	if ((port + n > 32768)); then echo "bench: no room below the ephemeral ports for ${reachable} servers" >&2; exit 1; fi
	"${work}/sshfleet" --count "${n}" --base-port "${port}" --shared-host-key --client-key "${work}/key" \
		--csv "${work}/part${part}.csv" --ready-file "${work}/ready${part}" 2>"${work}/fleet${part}.log" &
	fleet_pids+=($!)
	for _ in $(seq 600); do
		[[ -e "${work}/ready${part}" ]] && break
		kill -0 "${fleet_pids[-1]}" 2>/dev/null || { cat "${work}/fleet${part}.log" >&2; exit 1; }
		sleep 0.1
	done
	[[ -e "${work}/ready${part}" ]] || { echo "bench: fleet did not start" >&2; exit 1; }
	# Names are unique per fleet process only.
	if ((part == 0)); then head -1 "${work}/part0.csv" >"${work}/fleet.csv"; fi
	tail -n +2 "${work}/part${part}.csv" | sed "s/^/f${part}-/" >>"${work}/fleet.csv"
	port=$((port + n))
	left=$((left - n))
	part=$((part + 1))
done

psql -q "${admin_url}" -c "CREATE DATABASE ${db}" >/dev/null
db_url="${admin_url%/*}/${db}"
export DATABASE_URL="${db_url}"
"${work}/heartbeat" migrate >/dev/null
"${work}/heartbeat" servers import "${work}/fleet.csv" >/dev/null
extra=$((total - reachable))
if ((extra > 0)); then
	echo "adding ${extra} servers that refuse connections..."
	"${work}/fleetfill" -db "${db_url}" -n "${extra}" >/dev/null
	psql -q "${db_url}" -c "UPDATE servers SET host = '127.0.0.1', port = 1 WHERE name LIKE 'srv-%'" >/dev/null
fi
psql -qAt "${db_url}" -c "SELECT count(*) || ' servers in the store' FROM servers"

printf '%-4s %8s %8s %7s %7s %9s %8s\n' run claimed answered wall_s cpu_s us/probe rss_MiB
: >"${work}/figures"
for r in $(seq "${runs}"); do
	psql -q "${db_url}" -c "UPDATE probe_leases SET due_at = '-infinity', lease_until = NULL, run_id = NULL" >/dev/null
	# shellcheck disable=SC2086
	/usr/bin/time -v -o "${work}/time${r}" "${work}/heartbeat" probe-ssh --key "${work}/key" --probe-host "mem-${r}" \
		${PROBE_FLAGS:-} >/dev/null 2>"${work}/probe${r}.log" || true
	rss_kb="$(awk -F': ' '/Maximum resident set size/ {print $2}' "${work}/time${r}")"
	user="$(awk -F': ' '/User time/ {print $2}' "${work}/time${r}")"
	sys="$(awk -F': ' '/System time/ {print $2}' "${work}/time${r}")"
	wall="$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "${work}/time${r}" | awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }')"
	read -r claimed answered < <(psql -qAt -F' ' "${db_url}" -c "SELECT servers, succeeded FROM probe_runs WHERE host = 'mem-${r}' ORDER BY id DESC LIMIT 1")
	cpu="$(echo "${user} + ${sys}" | bc -l)"
	per="$(echo "if (${claimed} > 0) ${cpu} * 1000000 / ${claimed} else 0" | bc -l)"
	printf '%-4s %8d %8d %7.1f %7.2f %9.0f %8.0f\n' "${r}" "${claimed}" "${answered}" "${wall}" "${cpu}" "${per}" "$((rss_kb / 1024))"
	echo "${claimed} ${answered} ${wall} ${cpu} ${per} $((rss_kb / 1024))" >>"${work}/figures"
done
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
printf '%-4s %8s %8s %7.1f %7.2f %9.0f %8.0f\n' median "" "" \
	"$(awk '{print $3}' "${work}/figures" | median)" "$(awk '{print $4}' "${work}/figures" | median)" \
	"$(awk '{print $5}' "${work}/figures" | median)" "$(awk '{print $6}' "${work}/figures" | median)"
