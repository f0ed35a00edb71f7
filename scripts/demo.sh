#!/usr/bin/env bash
# The README's first command: heartbeat's main job on a throwaway SQLite
# store and a fleet of in-process SSH servers on 127.0.0.1, some of them
# failing on purpose. Needs nothing but the binaries `make build` makes, and
# touches nothing of the user's (no ~/.ssh, no crontab, no default store).
set -euo pipefail

bin="${1:-bin}"
hb="${bin}/heartbeat"
work="$(mktemp -d)"
fleet_pid=""
cleanup() {
	if [[ -n "${fleet_pid}" ]]; then
		kill "${fleet_pid}" 2>/dev/null || true
		wait "${fleet_pid}" 2>/dev/null || true
	fi
	rm -rf "${work}"
}
trap cleanup EXIT
export HEARTBEAT_DB="${work}/heartbeat.db"
export HOME="${work}" # keeps the demo away from the user's own keys and state
unset SSH_AUTH_SOCK HEARTBEAT_SSH_KEY SSH_PRIVATE_KEY_PATH DATABASE_URL POSTGRES_HOST 2>/dev/null || true

say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "heartbeat $*"; "${hb}" "$@"; }

say "sshfleet --modes ok=4,auth-reject=1,tarpit=1,not-ssh=1,drop=1 --client-key demo_key --csv fleet.csv &"
"${bin}/sshfleet" --modes ok=4,auth-reject=1,tarpit=1,not-ssh=1,drop=1 \
	--client-key "${work}/demo_key" --csv "${work}/fleet.csv" --ready-file "${work}/ready" 2>"${work}/fleet.log" &
fleet_pid=$!
for _ in $(seq 100); do
	[[ -e "${work}/ready" ]] && break
	kill -0 "${fleet_pid}" 2>/dev/null || { cat "${work}/fleet.log" >&2; exit 1; }
	sleep 0.1
done
[[ -e "${work}/ready" ]] || { echo "demo: the SSH fleet did not start" >&2; exit 1; }

run servers import "${work}/fleet.csv"
run servers add offsite --host no-such-host.invalid
run alert raise ok-00002 "disk 95% full" --severity critical
run probe-ssh --key "${work}/demo_key" --timeout 2s --summary
# status exits 2 when a server is OFFLINE: that is its answer, not a failure.
run status --verbose || echo "(exit $?: 0 all online, 1 some warning, 2 some offline, 3 unknown)"
say "heartbeat status --server ok-00001 ; echo \$?"
"${hb}" status --server ok-00001 >/dev/null && echo 0
# The same as a Nagios/Icinga check: one line, perfdata, exit 0/1/2/3.
say "heartbeat status --check --server tarpit-00001 ; echo \$?"
code=0
"${hb}" status --check --server tarpit-00001 || code=$?
echo "${code}"
# Every probe run ends with an evaluation round: each change of state is a
# flip with its time and reason, which history and uptime read.
run alert resolve "$("${hb}" alert list --json | sed -n 's/.*"id": \([0-9]*\).*/\1/p' | head -1)"
run evaluate
run history ok-00002 --since 1h
run uptime
