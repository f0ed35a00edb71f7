#!/usr/bin/env bash
# setup_heartbeat_cron.sh: install (or replace, or remove) the two staggered
# cron lines that run `heartbeat probe-ssh` every 30 seconds.
#
# Run with --help for the flags. The lines it writes end with a marker
# comment, so running it again replaces them and --remove takes out only
# them; every other line of the crontab is left byte for byte.
set -euo pipefail

readonly PROG="setup_heartbeat_cron.sh"
# Keep in sync with doctor.CronMarker in pkg/doctor (a test checks).
readonly MARKER='# heartbeat-probe: managed by setup_heartbeat_cron.sh'
# The first line of the env file this script writes; it only ever deletes
# an env file that starts with it.
readonly ENV_HEADER='# heartbeat cron environment: written by setup_heartbeat_cron.sh; mode 0600, holds secrets'
# cron's environment on Debian: HOME, LOGNAME and SHELL from passwd, this PATH.
readonly CRON_PATH='/usr/bin:/bin'

usage() {
	cat <<'EOF'
Usage: setup_heartbeat_cron.sh [options]

Installs two crontab lines that run `heartbeat probe-ssh` every 30 seconds
(one on the minute, one after `sleep 30`), with the store settings you give
it and output appended to a log file. Running it again replaces its lines;
other crontab lines are never touched.

Options:
  --binary PATH    heartbeat binary (default: `heartbeat` on PATH), stored
                   as an absolute, resolved path
  --db URL         store for the cron lines (default: HEARTBEAT_DB,
                   DATABASE_URL or POSTGRES_* from this environment, else
                   the user's default SQLite store)
  --log FILE       append probe output here (default:
                   ~/.local/state/heartbeat/probe.log of the target user)
  --env-file FILE  where secrets go (default: ~/.config/heartbeat/cron.env)
  --summary        log one summary line per run (default: only errors)
  --user NAME      install for NAME instead of yourself (root only)
  --remove         remove this script's lines (and its env file) and exit
  --dry-run        print the crontab that would be installed; change nothing
  -h, --help       show this help

Passwords never go into the crontab: a store URL with a password, or
POSTGRES_PASSWORD, is written to the env file (mode 0600, owned by the
user), which the cron lines source. Also carried from this environment:
HEARTBEAT_SSH_KEY, SSH_PRIVATE_KEY_PATH, HEARTBEAT_SSH_USER.

Before installing, it runs `heartbeat doctor --quick` as cron will run the
probe (same user, environment and store) and refuses if that fails.

Requires crontab and a running cron daemon (Debian/Ubuntu package: cron).
Keep the log bounded with scripts/logrotate/heartbeat (see README).
EOF
}

die() {
	printf '%s: %s\n' "${PROG}" "$*" >&2
	exit 1
}

note() {
	printf '%s: %s\n' "${PROG}" "$*" >&2
}

# shell_quote VALUE: VALUE as one single-quoted /bin/sh word.
shell_quote() {
	local q="'\\''"
	printf "'%s'" "${1//\'/${q}}"
}

# is_secret VALUE: true when VALUE holds a password (user:pass@ in a URL,
# or a password= parameter).
is_secret() {
	[[ "$1" =~ ://[^/@]*:[^/@]*@ ]] && return 0
	[[ "${1,,}" == *password=* ]] && return 0
	return 1
}

# cron_running: true when a cron daemon runs (Debian cron, or crond).
cron_running() {
	if command -v pgrep >/dev/null 2>&1; then
		pgrep -x cron >/dev/null 2>&1 || pgrep -x crond >/dev/null 2>&1
		return
	fi
	local comm
	for comm in /proc/[0-9]*/comm; do
		case "$(cat "${comm}" 2>/dev/null || true)" in
		cron | crond) return 0 ;;
		esac
	done
	return 1
}

binary="" db="" log="" env_file="" target_user="" summary=0 remove=0 dry_run=0
while (($# > 0)); do
	case "$1" in
	--binary | --db | --log | --env-file | --user)
		(($# >= 2)) || die "$1 needs a value (see --help)"
		case "$1" in
		--binary) binary="$2" ;;
		--db) db="$2" ;;
		--log) log="$2" ;;
		--env-file) env_file="$2" ;;
		--user) target_user="$2" ;;
		esac
		shift 2
		;;
	--binary=* | --db=* | --log=* | --env-file=* | --user=*)
		value="${1#*=}"
		case "$1" in
		--binary=*) binary="${value}" ;;
		--db=*) db="${value}" ;;
		--log=*) log="${value}" ;;
		--env-file=*) env_file="${value}" ;;
		--user=*) target_user="${value}" ;;
		esac
		shift
		;;
	--summary) summary=1; shift ;;
	--remove) remove=1; shift ;;
	--dry-run) dry_run=1; shift ;;
	-h | --help) usage; exit 0 ;;
	*) die "unknown argument $(shell_quote "$1") (see --help)" ;;
	esac
done

# --- who and where -----------------------------------------------------------

me="$(id -un)"
if [[ -z "${target_user}" ]]; then
	target_user="${me}"
elif [[ "${target_user}" != "${me}" && "$(id -u)" -ne 0 ]]; then
	die "--user ${target_user}: only root can install for another user (you are ${me})"
fi
passwd_entry="$(getent passwd "${target_user}")" || die "no such user: ${target_user}"
target_home="$(cut -d: -f6 <<<"${passwd_entry}")"
target_shell_group="$(id -gn "${target_user}")"
[[ -n "${target_home}" ]] || die "user ${target_user} has no home directory in passwd"

crontab_cmd=(crontab)
as_target=()
if [[ "${target_user}" != "${me}" ]]; then
	crontab_cmd=(crontab -u "${target_user}")
	command -v runuser >/dev/null 2>&1 || die "runuser not found (Debian package util-linux): needed to check the setup as ${target_user}"
	as_target=(runuser -u "${target_user}" --)
fi

command -v crontab >/dev/null 2>&1 ||
	die "the crontab command is not installed: install the cron package (Debian/Ubuntu: apt-get install cron; RHEL/Fedora: dnf install cronie), or use scripts/systemd/heartbeat-probe.timer instead"

# owned_install MODE SRC DEST: install SRC as DEST owned by the target user.
owned_install() {
	if [[ "${target_user}" != "${me}" ]]; then
		install -m "$1" -o "${target_user}" -g "${target_shell_group}" "$2" "$3"
	else
		install -m "$1" "$2" "$3"
	fi
}

# owned_dir DIR: create DIR (and parents) for the target user, mode 0700.
owned_dir() {
	[[ -d "$1" ]] && return 0
	local run=()
	if [[ "${target_user}" != "${me}" ]]; then
		run=("${as_target[@]}")
	fi
	"${run[@]}" mkdir -p -- "$1"
	"${run[@]}" chmod 0700 -- "$1"
}

tmp_dir="$(mktemp -d)"
trap 'rm -rf "${tmp_dir}"' EXIT

# read_crontab FILE: the target's crontab into FILE (empty if none).
read_crontab() {
	local err="${tmp_dir}/crontab.err"
	if "${crontab_cmd[@]}" -l >"$1" 2>"${err}"; then
		return 0
	fi
	if grep -q 'no crontab for' "${err}"; then
		: >"$1"
		return 0
	fi
	die "cannot read the crontab of ${target_user}: $(cat "${err}")"
}

# write_crontab FILE: install FILE as the target's crontab (an empty FILE
# removes the crontab).
write_crontab() {
	if [[ ! -s "$1" ]]; then
		"${crontab_cmd[@]}" -r 2>/dev/null || true
		return 0
	fi
	"${crontab_cmd[@]}" "$1" || die "crontab refused the new table (nothing changed)"
}

[[ -n "${env_file}" ]] || env_file="${target_home}/.config/heartbeat/cron.env"
[[ "${env_file}" == /* ]] || die "--env-file must be an absolute path, got ${env_file}"

current="${tmp_dir}/current"
others="${tmp_dir}/others"
read_crontab "${current}"
# Every line that is not ours, byte for byte (grep exits 1 when none is).
grep -vF -- "${MARKER}" "${current}" >"${others}" || true
ours_now="$(grep -cF -- "${MARKER}" "${current}" || true)"

# remove_env_file: delete the env file if this script wrote it.
remove_env_file() {
	if [[ -f "${env_file}" ]] && [[ "$(head -n1 "${env_file}")" == "${ENV_HEADER}" ]]; then
		rm -f -- "${env_file}"
		note "removed ${env_file}"
	fi
}

if ((remove)); then
	if ((dry_run)); then
		cat "${others}"
		note "dry run: would remove ${ours_now} line(s) from the crontab of ${target_user}; nothing changed"
		exit 0
	fi
	if ((ours_now == 0)); then
		note "no heartbeat lines in the crontab of ${target_user}; nothing to remove"
	else
		write_crontab "${others}"
		note "removed ${ours_now} line(s) from the crontab of ${target_user}"
	fi
	remove_env_file
	exit 0
fi

# --- what to run -------------------------------------------------------------

if [[ -z "${binary}" ]]; then
	binary="$(command -v heartbeat || true)"
	[[ -n "${binary}" ]] || die "heartbeat is not on PATH: pass --binary /path/to/heartbeat"
fi
binary="$(readlink -f -- "${binary}")" || die "--binary: cannot resolve ${binary}"
[[ -f "${binary}" && -x "${binary}" ]] || die "--binary: ${binary} is not an executable file"

[[ -n "${log}" ]] || log="${target_home}/.local/state/heartbeat/probe.log"
[[ "${log}" == /* ]] || die "--log must be an absolute path, got ${log}"

# The store and SSH settings the cron lines need: NAME=VALUE pairs, split
# into those safe to show in the crontab and the secrets.
inline=()
secret=()
carry() {
	if is_secret "$2"; then
		secret+=("$1=$2")
	else
		inline+=("$1=$2")
	fi
}
if [[ -n "${db}" ]]; then
	carry HEARTBEAT_DB "${db}"
elif [[ -n "${HEARTBEAT_DB:-}" ]]; then
	carry HEARTBEAT_DB "${HEARTBEAT_DB}"
elif [[ -n "${DATABASE_URL:-}" ]]; then
	carry DATABASE_URL "${DATABASE_URL}"
else
	for v in POSTGRES_HOST POSTGRES_PORT POSTGRES_DB POSTGRES_USER; do
		if [[ -n "${!v:-}" ]]; then
			carry "${v}" "${!v}"
		fi
	done
	if [[ -n "${POSTGRES_PASSWORD:-}" ]]; then
		secret+=("POSTGRES_PASSWORD=${POSTGRES_PASSWORD}")
	fi
	# The default SQLite store moves with XDG_STATE_HOME; cron does not set
	# it, so carry it when installing for oneself.
	if [[ -n "${XDG_STATE_HOME:-}" && "${target_user}" == "${me}" && ${#inline[@]} -eq 0 && ${#secret[@]} -eq 0 ]]; then
		carry XDG_STATE_HOME "${XDG_STATE_HOME}"
	fi
fi
for v in HEARTBEAT_SSH_KEY SSH_PRIVATE_KEY_PATH HEARTBEAT_SSH_USER; do
	if [[ -n "${!v:-}" ]]; then
		carry "${v}" "${!v}"
	fi
done

# command_for ARGS: the shell command cron runs, without the schedule.
command_for() {
	local cmd="" pair
	if ((${#secret[@]} > 0)); then
		cmd=". $(shell_quote "${env_file}") && "
	fi
	for pair in "${inline[@]}"; do
		cmd+="${pair%%=*}=$(shell_quote "${pair#*=}") "
	done
	cmd+="$(shell_quote "${binary}") $*"
	printf '%s' "${cmd}"
}

probe_args="probe-ssh"
if ((summary)); then
	probe_args+=" --summary"
fi
probe_cmd="$(command_for "${probe_args}") >>$(shell_quote "${log}") 2>&1"
# cron turns an unescaped % into a newline.
cron_cmd="${probe_cmd//%/\\%}"
line1="* * * * * ${cron_cmd} ${MARKER}"
line2="* * * * * sleep 30 && ${cron_cmd} ${MARKER}"

new="${tmp_dir}/new"
{
	cat "${others}"
	printf '%s\n%s\n' "${line1}" "${line2}"
} >"${new}"

env_tmp="${tmp_dir}/cron.env"
if ((${#secret[@]} > 0)); then
	(
		umask 077
		{
			printf '%s\n' "${ENV_HEADER}"
			for pair in "${secret[@]}"; do
				printf 'export %s=%s\n' "${pair%%=*}" "$(shell_quote "${pair#*=}")"
			done
		} >"${env_tmp}"
	)
fi

if ((dry_run)); then
	cat "${new}"
	if ((${#secret[@]} > 0)); then
		names=()
		for pair in "${secret[@]}"; do names+=("${pair%%=*}"); done
		note "dry run: would write ${env_file} (mode 0600) with ${names[*]} (values not shown)"
	fi
	note "dry run: the crontab of ${target_user} above was not installed; doctor --quick not run"
	exit 0
fi

cron_running ||
	die "the cron daemon is not running, so the lines would never run: start it (systemctl enable --now cron; package cron on Debian/Ubuntu) or use scripts/systemd/heartbeat-probe.timer"

# --- check as cron will run it -----------------------------------------------

if ((${#secret[@]} > 0)); then
	# The check sources a temporary copy, readable by the target user only.
	if [[ "${target_user}" != "${me}" ]]; then
		chown "${target_user}:${target_shell_group}" "${tmp_dir}" "${env_tmp}"
	fi
	check_env="${env_tmp}"
else
	check_env=""
fi
doctor_cmd="$(env_file="${check_env:-${env_file}}" command_for "doctor --quick")"
doctor_out="${tmp_dir}/doctor.out"
if ! (cd / && "${as_target[@]}" env -i HOME="${target_home}" LOGNAME="${target_user}" USER="${target_user}" \
	PATH="${CRON_PATH}" SHELL=/bin/sh /bin/sh -c "${doctor_cmd}") >"${doctor_out}" 2>&1; then
	cat "${doctor_out}" >&2
	die "refusing to install: \`heartbeat doctor --quick\` failed as ${target_user} with cron's environment (see above); fix that, then run this again"
fi

# --- install -----------------------------------------------------------------

if ((${#secret[@]} > 0)); then
	owned_dir "$(dirname -- "${env_file}")"
	owned_install 0600 "${env_tmp}" "${env_file}"
	note "wrote ${env_file} (mode 0600)"
else
	remove_env_file
fi
owned_dir "$(dirname -- "${log}")"
if [[ ! -e "${log}" ]]; then
	: >"${tmp_dir}/empty.log"
	owned_install 0640 "${tmp_dir}/empty.log" "${log}"
fi
write_crontab "${new}"
if ((ours_now > 0)); then
	note "replaced ${ours_now} line(s) in the crontab of ${target_user}: probe-ssh runs every 30 s, output to ${log}"
else
	note "installed 2 lines in the crontab of ${target_user}: probe-ssh runs every 30 s, output to ${log}"
fi
note "verify in a minute with: heartbeat doctor (as ${target_user}) and heartbeat status --verbose"
