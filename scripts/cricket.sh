#!/bin/sh
# Launcher for the cricket CLI.
here=$(dirname "$(readlink -f "$0")")
main="$here/../dist/src/cli/main.js"
[ -f "$main" ] || main="$here/../lib/cricket/dist/src/cli/main.js"
exec node "$main" "$@"
