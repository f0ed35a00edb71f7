#!/usr/bin/env bash
# Benchmark probe-ssh against its floor, on one machine.
#
# Starts an in-process fleet of N `ok` SSH servers (default 10,000) on
# 127.0.0.1, imports it into a fresh Postgres database, and runs, RUNS times
# each and alternately:
#   probe-ssh  the real thing: pinning, failure classes, batched writes
#   floor      scripts/bench/dialfloor: a bare loop of ssh.Dial calls with
#              the same key and concurrency, and nothing else
# It prints the median of each figure and the ratios. The fleet shares the
# CPU with the prober, so absolute rates are lower than on a dedicated host;
# the ratios are what to compare.
#
# Usage: scripts/bench/probe.sh [N] [RUNS]
# Env:   BENCH_PG (admin URL, default postgres://postgres@127.0.0.1:5432/postgres)
set -euo pipefail

servers="${1:-10000}"
runs="${2:-3}"
admin_url="${BENCH_PG:-postgres://postgres@127.0.0.1:5432/postgres}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
work="$(mktemp -d)"
db="hbbench_$$"
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

# One listening socket per server plus the prober's connections.
ulimit -n "$(ulimit -Hn)"
if (($(ulimit -n) < servers + 2048)); then
	echo "bench: ulimit -n is $(ulimit -n); ${servers} servers need about $((servers + 2048))" >&2
	exit 1
fi

echo "building..."
(cd "${root}" && go build -o "${work}/heartbeat" ./cmd/heartbeat &&
	go build -o "${work}/sshfleet" ./cmd/sshfleet &&
	go build -o "${work}/dialfloor" ./scripts/bench/dialfloor)

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
export HEARTBEAT_DB="${admin_url%/*}/${db}"
"${work}/heartbeat" migrate >/dev/null
"${work}/heartbeat" servers import "${work}/fleet.csv" >/dev/null

# measure NAME CMD...: runs CMD under /usr/bin/time -v and appends
# "wall cpu_ms rss_kib" to ${work}/NAME.
measure() {
	local name="$1"
	shift
	/usr/bin/time -v -o "${work}/time.txt" "$@" >"${work}/${name}.out"
	local user sys rss wall
	user="$(awk -F': ' '/User time/ {print $2}' "${work}/time.txt")"
	sys="$(awk -F': ' '/System time/ {print $2}' "${work}/time.txt")"
	rss="$(awk -F': ' '/Maximum resident/ {print $2}' "${work}/time.txt")"
	wall="$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "${work}/time.txt")"
	echo "${wall} $(echo "(${user} + ${sys}) * 1000" | bc -l) ${rss}" >>"${work}/${name}"
}

for i in $(seq "${runs}"); do
	echo "run ${i}/${runs}..."
	measure probe "${work}/heartbeat" probe-ssh --json --all --key "${work}/key" --user bench
	answered="$(grep -o '"succeeded": [0-9]*' "${work}/probe.out" | grep -o '[0-9]*$')"
	store_s="$(grep -o '"store_seconds": [0-9.e-]*' "${work}/probe.out" | grep -o '[0-9.e-]*$')"
	tail_s="$(grep -o '"store_tail_seconds": [0-9.e-]*' "${work}/probe.out" | grep -o '[0-9.e-]*$')"
	echo "${answered} ${store_s} ${tail_s}" >>"${work}/probe.extra"
	measure floor "${work}/dialfloor" --csv "${work}/fleet.csv" --key "${work}/key" --user bench --concurrency 512
	floor_answered="$(grep -o 'answered=[0-9]*' "${work}/floor.out" | cut -d= -f2)"
	echo "${floor_answered} 0 0" >>"${work}/floor.extra"
done

# median FILE COLUMN
median() { sort -g -k"$2","$2" "$1" | awk -v c="$2" '{v[NR]=$c} END {print v[int((NR+1)/2)]}'; }

report() {
	local name="$1" wall cpu rss answered
	wall="$(median "${work}/${name}" 1)"
	cpu="$(median "${work}/${name}" 2)"
	rss="$(median "${work}/${name}" 3)"
	answered="$(median "${work}/${name}.extra" 1)"
	printf '%-10s %9s %10.2f %10.0f %12.3f %10.1f\n' "${name}" "${answered}/${servers}" "${wall}" \
		"$(echo "${servers} / ${wall}" | bc -l)" "$(echo "${cpu} / ${servers}" | bc -l)" "$(echo "${rss} / 1024" | bc -l)"
}

echo
echo "median of ${runs} runs, ${servers} servers, $(nproc) cores, fleet on the same host"
printf '%-10s %9s %10s %10s %12s %10s\n' "" "answered" "wall s" "probes/s" "cpu ms/probe" "rss MiB"
report probe
report floor
pw="$(median "${work}/probe" 1)"
fw="$(median "${work}/floor" 1)"
pc="$(median "${work}/probe" 2)"
fc="$(median "${work}/floor" 2)"
printf '\nthroughput probe/floor: %.2fx (target >= 0.80)\n' "$(echo "${fw} / ${pw}" | bc -l)"
printf 'cpu per probe probe/floor: %.2fx\n' "$(echo "${pc} / ${fc}" | bc -l)"
printf 'store writes (median): %.3fs in all, overlapping the probes; %.3fs after the last probe (target < 1s)\n' \
	"$(median "${work}/probe.extra" 2)" "$(median "${work}/probe.extra" 3)"
