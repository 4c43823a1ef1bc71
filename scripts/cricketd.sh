#!/bin/sh
# Launcher for cricketd from a checkout or an install.
# As root, the daemon runs under catatonit, which makes itself a child subreaper: the
# conmon monitors the daemon starts detach (double fork) and must be reaped at once
# when they exit, not whenever PID 1 gets round to it. systemd does this in
# production (KillMode=process keeps containers alive across restarts either way).
here=$(dirname "$(readlink -f "$0")")
main="$here/../dist/src/daemon/main.js"
[ -f "$main" ] || main="$here/../lib/cricket/dist/src/daemon/main.js"
if [ "${CRICKET_SUBREAPER:-1}" = 1 ] && [ "$(id -u)" = 0 ] && command -v catatonit >/dev/null 2>&1; then
  exec catatonit -- node "$main" "$@"
fi
exec node "$main" "$@"
