#!/bin/sh
# Launcher for cricketd from a checkout or an install.
# As root, the daemon runs under catatonit, which makes itself a child subreaper: the
# conmon monitors the daemon starts detach (double fork) and must be reaped at once
# when they exit, not whenever PID 1 gets round to it. systemd does this in
# production (KillMode=process keeps containers alive across restarts either way).
here=$(dirname "$(readlink -f "$0")")
main="$here/../dist/src/daemon/main.js"
[ -f "$main" ] || main="$here/../lib/cricket/dist/src/daemon/main.js"
# V8's young generation grows to 16 MB semi-spaces under a burst of calls and keeps them
# long after: capped at 1 MB the daemon's PSS with 21 pods went 48 -> 43 MB (idle 39.5 ->
# 34 MB) for a few more scavenges, which the CPU figures of bench-compare absorb.
NODE_FLAGS="--max-semi-space-size=1"
if [ "${CRICKET_SUBREAPER:-1}" = 1 ] && [ "$(id -u)" = 0 ] && command -v catatonit >/dev/null 2>&1; then
  exec catatonit -- node $NODE_FLAGS "$main" "$@"
fi
exec node $NODE_FLAGS "$main" "$@"
