#!/usr/bin/env bash
# setup_heartbeat_cron.sh: install (or replace, or remove) the two staggered
# cron lines that run `heartbeat probe-ssh` every 30 seconds; with --push,
# the agent side instead: `heartbeat push` every 30 seconds from a systemd
# timer or two cron lines.
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
# --push: the marker of its cron lines and the first line of its units (a
# different word from MARKER, so each mode leaves the other's lines alone),
# the first line of its env file, and the unit name.
readonly PUSH_MARKER='# heartbeat-push: managed by setup_heartbeat_cron.sh'
readonly PUSH_ENV_HEADER='# heartbeat push environment: written by setup_heartbeat_cron.sh; mode 0600, holds the token'
readonly PUSH_UNIT='heartbeat-push'

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

Pushing servers (agents): --push
  setup_heartbeat_cron.sh --push --url URL --server-id ID --token-file FILE

Installs `heartbeat push` every 30 seconds on this server: a systemd
service and timer (heartbeat-push.service, .timer) where systemd runs, else
two staggered cron lines. URL, server id and token go into an env file
(mode 0600, written under umask 077), which the timer's EnvironmentFile= or
the cron lines read: the token is never in a unit, a crontab or ps. Before
installing it pushes once as the timer or cron will, and refuses if that
fails. Running it again replaces its units or lines; installing one flavour
removes the other's.

  --url URL         serve-api base URL (default: HEARTBEAT_API_URL or
                    STACKSENSE_API_URL from this environment)
  --server-id ID    this server's id (default: STACKSENSE_SERVER_ID)
  --token-file FILE read the token from FILE, or from standard input if
                    FILE is - (default: HEARTBEAT_TOKEN from this environment)
  --systemd         the systemd flavour (default where systemd runs)
  --cron            the cron flavour (default elsewhere)
  --env-file FILE   default: /etc/heartbeat/push.env (systemd), or
                    ~/.config/heartbeat/push.env of the user (cron)
  --log FILE        cron only; default ~/.local/state/heartbeat/push.log
  --user NAME       cron: whose crontab; systemd: User= of the service
                    (default: DynamicUser=yes)
  --binary, --dry-run as above; --remove --push removes the units, the
                    lines and the env file of --push (both flavours)

The systemd flavour needs root. Overrides for tests: HEARTBEAT_SYSTEMD_DIR
(unit directory, default /etc/systemd/system) and HEARTBEAT_SYSTEMCTL (the
systemctl command, e.g. true).
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
push=0 flavour="" push_url="" push_server_id="" token_file=""
while (($# > 0)); do
	case "$1" in
	--binary | --db | --log | --env-file | --user | --url | --server-id | --token-file)
		(($# >= 2)) || die "$1 needs a value (see --help)"
		case "$1" in
		--binary) binary="$2" ;;
		--db) db="$2" ;;
		--log) log="$2" ;;
		--env-file) env_file="$2" ;;
		--user) target_user="$2" ;;
		--url) push_url="$2" ;;
		--server-id) push_server_id="$2" ;;
		--token-file) token_file="$2" ;;
		esac
		shift 2
		;;
	--binary=* | --db=* | --log=* | --env-file=* | --user=* | --url=* | --server-id=* | --token-file=*)
		value="${1#*=}"
		case "$1" in
		--binary=*) binary="${value}" ;;
		--db=*) db="${value}" ;;
		--log=*) log="${value}" ;;
		--env-file=*) env_file="${value}" ;;
		--user=*) target_user="${value}" ;;
		--url=*) push_url="${value}" ;;
		--server-id=*) push_server_id="${value}" ;;
		--token-file=*) token_file="${value}" ;;
		esac
		shift
		;;
	--summary) summary=1; shift ;;
	--remove) remove=1; shift ;;
	--dry-run) dry_run=1; shift ;;
	--push) push=1; shift ;;
	--systemd | --cron)
		[[ -z "${flavour}" || "${flavour}" == "${1#--}" ]] || die "--systemd and --cron exclude each other"
		flavour="${1#--}"
		shift
		;;
	-h | --help) usage; exit 0 ;;
	*) die "unknown argument $(shell_quote "$1") (see --help)" ;;
	esac
done
if ((push)); then
	[[ -z "${db}" ]] || die "--db is for the probe lines; --push needs --url, --server-id and a token (see --help)"
	((!summary)) || die "--summary is for the probe lines, not --push"
else
	[[ -z "${flavour}" ]] || die "--${flavour} chooses how --push runs; the probe lines are always cron (or use scripts/systemd/heartbeat-probe.timer)"
	[[ -z "${push_url}${push_server_id}${token_file}" ]] || die "--url, --server-id and --token-file need --push"
fi

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

# require_crontab: die with the package to install unless crontab exists.
require_crontab() {
	command -v crontab >/dev/null 2>&1 ||
		die "the crontab command is not installed: install the cron package (Debian/Ubuntu: apt-get install cron; RHEL/Fedora: dnf install cronie)$1"
}
((push)) || require_crontab ", or use scripts/systemd/heartbeat-probe.timer instead"

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

# resolve_binary: set binary to the absolute, resolved path of heartbeat.
resolve_binary() {
	if [[ -z "${binary}" ]]; then
		binary="$(command -v heartbeat || true)"
		[[ -n "${binary}" ]] || die "heartbeat is not on PATH: pass --binary /path/to/heartbeat"
	fi
	binary="$(readlink -f -- "${binary}")" || die "--binary: cannot resolve ${binary}"
	[[ -f "${binary}" && -x "${binary}" ]] || die "--binary: ${binary} is not an executable file"
}

# --- push mode: the agent side -----------------------------------------------

systemd_dir="${HEARTBEAT_SYSTEMD_DIR:-/etc/systemd/system}"
# Word-split on purpose: the override may be a command with arguments.
read -r -a systemctl_cmd <<<"${HEARTBEAT_SYSTEMCTL:-systemctl}"
push_service="${systemd_dir}/${PUSH_UNIT}.service"
push_timer="${systemd_dir}/${PUSH_UNIT}.timer"

# systemd_running: true when systemd is PID 1 (sd_booted's test).
systemd_running() {
	[[ -d /run/systemd/system ]]
}

# ours FILE HEADER: true when FILE exists and its first line is HEADER.
ours() {
	[[ -f "$1" ]] && [[ "$(head -n1 -- "$1" 2>/dev/null)" == "$2" ]]
}

# stale_from_lines CRONTAB: add the env files that the push lines in
# CRONTAB source to stale_env.
stale_from_lines() {
	mapfile -t -O "${#stale_env[@]}" stale_env < <(grep -F -- "${PUSH_MARKER}" "$1" |
		sed -n "s/^.* set -a && \. '\([^']*\)' && set +a .*\$/\1/p")
}

# push_remove_lines: take this script's push lines out of the crontab (if
# there is a crontab command at all); the probe lines stay.
push_remove_lines() {
	command -v crontab >/dev/null 2>&1 || return 0
	local current="${tmp_dir}/push-current" others="${tmp_dir}/push-others" n
	read_crontab "${current}"
	n="$(grep -cF -- "${PUSH_MARKER}" "${current}" || true)"
	((n > 0)) || return 0
	grep -vF -- "${PUSH_MARKER}" "${current}" >"${others}" || true
	stale_from_lines "${current}"
	if ((dry_run)); then
		note "dry run: would remove ${n} push line(s) from the crontab of ${target_user}"
		return 0
	fi
	write_crontab "${others}"
	note "removed ${n} push line(s) from the crontab of ${target_user}"
}

# push_remove_units: stop, disable and delete the units this script wrote.
push_remove_units() {
	local unit found=()
	for unit in "${push_timer}" "${push_service}"; do
		if ours "${unit}" "${PUSH_MARKER}"; then
			found+=("${unit}")
		fi
	done
	((${#found[@]} > 0)) || return 0
	if ours "${push_service}" "${PUSH_MARKER}"; then
		mapfile -t -O "${#stale_env[@]}" stale_env < <(sed -n 's/^EnvironmentFile=//p' "${push_service}")
	fi
	if ((dry_run)); then
		note "dry run: would disable ${PUSH_UNIT}.timer and remove ${found[*]}"
		return 0
	fi
	"${systemctl_cmd[@]}" disable --now "${PUSH_UNIT}.timer" >/dev/null 2>&1 ||
		note "warning: systemctl disable --now ${PUSH_UNIT}.timer failed; removing the units anyway"
	rm -f -- "${found[@]}" || die "cannot remove ${found[*]} (the units need root to remove)"
	"${systemctl_cmd[@]}" daemon-reload || note "warning: systemctl daemon-reload failed"
	note "removed ${found[*]}"
}

# The env files of the lines and units removed so far: deleted at the end
# unless the new install uses the same file.
stale_env=()

# push_remove_stale_env: delete the env files in stale_env but env_file.
push_remove_stale_env() {
	local f
	for f in "${stale_env[@]}"; do
		[[ "${f}" == "${env_file}" ]] || push_remove_env "${f}"
	done
}

# push_remove_env FILE...: delete each FILE this script wrote for --push.
push_remove_env() {
	local f
	for f in "$@"; do
		if ours "${f}" "${PUSH_ENV_HEADER}"; then
			if ((dry_run)); then
				note "dry run: would remove ${f}"
			else
				rm -f -- "${f}"
				note "removed ${f}"
			fi
		fi
	done
}

# safe_value NAME VALUE: VALUE goes single-quoted into a file that both
# /bin/sh and systemd's EnvironmentFile= read, so it must not hold a quote,
# a backslash or a control character (neither a URL nor a token does).
safe_value() {
	[[ "$2" != *[\'\\[:cntrl:]]* ]] || die "$1 holds a quote, backslash or control character; refusing to write it to the env file"
}

if ((push)); then
	if ((remove)); then
		push_remove_lines
		push_remove_units
		if [[ -n "${env_file}" ]]; then
			push_remove_env "${env_file}"
		else
			push_remove_env "${target_home}/.config/heartbeat/push.env" /etc/heartbeat/push.env
		fi
		push_remove_stale_env
		exit 0
	fi

	if [[ -z "${flavour}" ]]; then
		if systemd_running; then flavour=systemd; else flavour=cron; fi
	fi

	# What push needs, as config.ResolvePush reads it.
	[[ -n "${push_url}" ]] || push_url="${HEARTBEAT_API_URL:-${STACKSENSE_API_URL:-}}"
	[[ -n "${push_url}" ]] || die "no API URL: pass --url or set HEARTBEAT_API_URL or STACKSENSE_API_URL"
	[[ "${push_url}" == http://* || "${push_url}" == https://* ]] || die "--url must start with http:// or https://, got ${push_url}"
	[[ "${push_url}" != *[[:space:]]* ]] || die "--url must not contain spaces"
	safe_value --url "${push_url}"
	[[ -n "${push_server_id}" ]] || push_server_id="${STACKSENSE_SERVER_ID:-}"
	[[ -n "${push_server_id}" ]] || die "no server id: pass --server-id or set STACKSENSE_SERVER_ID"
	[[ "${push_server_id}" =~ ^[1-9][0-9]{0,18}$ ]] || die "--server-id must be a positive number, got ${push_server_id}"
	if [[ -n "${token_file}" ]]; then
		if [[ "${token_file}" == - ]]; then
			token="$(cat)" || die "cannot read the token from standard input"
		else
			token="$(cat -- "${token_file}")" || die "cannot read --token-file ${token_file}"
		fi
	else
		token="${HEARTBEAT_TOKEN:-}"
	fi
	# Trimmed like --token-file of heartbeat push.
	token="${token#"${token%%[![:space:]]*}"}"
	token="${token%"${token##*[![:space:]]}"}"
	[[ -n "${token}" ]] || die "no token: pass --token-file FILE (or - for standard input) or set HEARTBEAT_TOKEN (issue one with \`heartbeat servers token ID|NAME\`)"
	[[ "${token}" != *[[:space:]]* ]] || die "the token must be one word (no spaces or line breaks)"
	safe_value "the token" "${token}"
	resolve_binary

	if [[ -z "${env_file}" ]]; then
		if [[ "${flavour}" == systemd ]]; then
			env_file=/etc/heartbeat/push.env
		else
			env_file="${target_home}/.config/heartbeat/push.env"
		fi
	fi
	[[ "${env_file}" == /* ]] || die "--env-file must be an absolute path, got ${env_file}"
	safe_value --env-file "${env_file}"

	# The env file, created under umask 077 so that no copy of it is ever
	# readable by others, not even for a moment.
	push_env="${tmp_dir}/push.env"
	(
		umask 077
		printf '%s\n' "${PUSH_ENV_HEADER}" \
			"HEARTBEAT_API_URL='${push_url}'" \
			"STACKSENSE_SERVER_ID='${push_server_id}'" \
			"HEARTBEAT_TOKEN='${token}'" >"${push_env}"
	)

	# The command cron (or the check) runs: set -a exports what the file
	# sets, so one file serves both /bin/sh and systemd's EnvironmentFile=.
	push_command_for() {
		printf 'set -a && . %s && set +a && %s push' "$(shell_quote "$1")" "$(shell_quote "${binary}")"
	}

	if [[ "${flavour}" == systemd ]]; then
		[[ "${binary}" != *[[:space:]]* ]] || die "--binary: the systemd flavour needs a path without spaces, got ${binary}"
		if [[ "${target_user}" != "${me}" ]]; then
			run_as="User=${target_user}"
		else
			# No account needed: systemd (root) reads the env file, and the
			# push itself needs no privilege and no file.
			run_as="DynamicUser=yes"
		fi
		{
			printf '%s\n' "${PUSH_MARKER}" \
				'[Unit]' \
				"Description=Send this server's heartbeat to heartbeat serve-api" \
				'Wants=network-online.target' \
				'After=network-online.target' \
				'' \
				'[Service]' \
				'Type=oneshot' \
				"EnvironmentFile=${env_file}" \
				"ExecStart=${binary} push" \
				"${run_as}" \
				'NoNewPrivileges=yes' \
				'ProtectSystem=strict' \
				'ProtectHome=read-only' \
				'PrivateTmp=yes'
		} >"${tmp_dir}/push.service"
		{
			printf '%s\n' "${PUSH_MARKER}" \
				'[Unit]' \
				"Description=Send this server's heartbeat every 30 seconds" \
				'' \
				'[Timer]' \
				'OnBootSec=30s' \
				'OnUnitActiveSec=30s' \
				'AccuracySec=1s' \
				'' \
				'[Install]' \
				'WantedBy=timers.target'
		} >"${tmp_dir}/push.timer"
		if ((dry_run)); then
			printf '### %s\n' "${push_service}"
			cat "${tmp_dir}/push.service"
			printf '### %s\n' "${push_timer}"
			cat "${tmp_dir}/push.timer"
			note "dry run: would write ${env_file} (mode 0600) with HEARTBEAT_API_URL, STACKSENSE_SERVER_ID, HEARTBEAT_TOKEN (values not shown)"
			push_remove_lines
			note "dry run: nothing installed; the test push was not sent"
			exit 0
		fi
		[[ -d "${systemd_dir}" && -w "${systemd_dir}" ]] ||
			die "cannot write to ${systemd_dir}: the systemd flavour needs root (or use --cron)"
		check_as=()
		if [[ "${target_user}" != "${me}" ]]; then
			chown "${target_user}:${target_shell_group}" "${tmp_dir}" "${push_env}"
			check_as=("${as_target[@]}")
		fi
	else
		require_crontab ""
		[[ -n "${log}" ]] || log="${target_home}/.local/state/heartbeat/push.log"
		[[ "${log}" == /* ]] || die "--log must be an absolute path, got ${log}"
		cron_cmd="$(push_command_for "${env_file}") >>$(shell_quote "${log}") 2>&1"
		# cron turns an unescaped % into a newline.
		cron_cmd="${cron_cmd//%/\\%}"
		current="${tmp_dir}/current"
		read_crontab "${current}"
		ours_now="$(grep -cF -- "${PUSH_MARKER}" "${current}" || true)"
		stale_from_lines "${current}"
		new="${tmp_dir}/new"
		{
			grep -vF -- "${PUSH_MARKER}" "${current}" || true
			printf '%s\n' "* * * * * ${cron_cmd} ${PUSH_MARKER}" "* * * * * sleep 30 && ${cron_cmd} ${PUSH_MARKER}"
		} >"${new}"
		if ((dry_run)); then
			cat "${new}"
			note "dry run: would write ${env_file} (mode 0600) with HEARTBEAT_API_URL, STACKSENSE_SERVER_ID, HEARTBEAT_TOKEN (values not shown)"
			push_remove_units
			note "dry run: the crontab of ${target_user} above was not installed; the test push was not sent"
			exit 0
		fi
		cron_running ||
			die "the cron daemon is not running, so the lines would never run: start it (systemctl enable --now cron; package cron on Debian/Ubuntu) or use --systemd"
		check_as=("${as_target[@]}")
		if [[ "${target_user}" != "${me}" ]]; then
			chown "${target_user}:${target_shell_group}" "${tmp_dir}" "${push_env}"
		fi
	fi

	# --- check: one push, as the timer or cron will send it -------------------
	push_out="${tmp_dir}/push.out"
	if ! (cd / && "${check_as[@]}" env -i HOME="${target_home}" LOGNAME="${target_user}" USER="${target_user}" \
		PATH="${CRON_PATH}" SHELL=/bin/sh /bin/sh -c "$(push_command_for "${push_env}")") >"${push_out}" 2>&1; then
		cat "${push_out}" >&2
		die "refusing to install: \`heartbeat push\` to ${push_url} as server ${push_server_id} failed (see above); fix that, then run this again"
	fi
	note "test push to ${push_url} as server ${push_server_id} accepted"

	# --- install --------------------------------------------------------------
	if [[ "${flavour}" == systemd ]]; then
		(
			umask 077
			mkdir -p -- "$(dirname -- "${env_file}")"
			install -m 0600 "${push_env}" "${env_file}"
		)
		note "wrote ${env_file} (mode 0600)"
		replaced=0
		if ours "${push_service}" "${PUSH_MARKER}"; then replaced=1; fi
		install -m 0644 "${tmp_dir}/push.service" "${push_service}"
		install -m 0644 "${tmp_dir}/push.timer" "${push_timer}"
		"${systemctl_cmd[@]}" daemon-reload || die "systemctl daemon-reload failed"
		"${systemctl_cmd[@]}" enable --now "${PUSH_UNIT}.timer" || die "systemctl enable --now ${PUSH_UNIT}.timer failed"
		if ((replaced)); then
			"${systemctl_cmd[@]}" restart "${PUSH_UNIT}.timer" || note "warning: systemctl restart ${PUSH_UNIT}.timer failed"
		fi
		push_remove_lines
		push_remove_stale_env
		note "$( ((replaced)) && echo replaced || echo installed) ${push_service} and ${push_timer}: heartbeat push runs every 30 s"
		note "verify with: systemctl list-timers ${PUSH_UNIT}.timer; journalctl -u ${PUSH_UNIT}.service"
	else
		(
			umask 077
			owned_dir "$(dirname -- "${env_file}")"
			owned_install 0600 "${push_env}" "${env_file}"
		)
		note "wrote ${env_file} (mode 0600)"
		owned_dir "$(dirname -- "${log}")"
		if [[ ! -e "${log}" ]]; then
			: >"${tmp_dir}/empty.log"
			owned_install 0640 "${tmp_dir}/empty.log" "${log}"
		fi
		write_crontab "${new}"
		push_remove_units
		push_remove_stale_env
		if ((ours_now > 0)); then
			note "replaced ${ours_now} push line(s) in the crontab of ${target_user}: heartbeat push runs every 30 s, errors to ${log}"
		else
			note "installed 2 push lines in the crontab of ${target_user}: heartbeat push runs every 30 s, errors to ${log}"
		fi
	fi
	exit 0
fi

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

resolve_binary

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
