#!/usr/bin/env bash
# The README's first command: shows heartbeat's job on a throwaway SQLite
# store, touching nothing of the user's.
set -euo pipefail

bin="${1:-bin}"
hb="${bin}/heartbeat"
work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT
export HEARTBEAT_DB="${work}/heartbeat.db"

say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "heartbeat $*"; "${hb}" "$@"; }

run servers add web1 --host 10.0.0.5
run servers add web2 --host 10.0.0.6 --port 2222 --user monitor
run servers add db1 --host db1.internal
run alert raise web2 "disk 95% full" --severity critical
run servers list
# status exits 2 when a server is OFFLINE: that is its answer, not a failure.
run status --verbose || echo "(exit $? : 0 all online, 1 warning, 2 offline, 3 unknown)"
