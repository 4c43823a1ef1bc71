#!/bin/bash
# cricket-runsc-join: the OCI runtime conmon runs for a container that JOINS its pod's
# gVisor sandbox (annotation io.kubernetes.cri.container-type=container), in place of
# runsc itself. Everything but create, start and delete goes straight to runsc.
#
# Why: a joining container's stdio are those of the process that runs `runsc start`
# (not of `runsc create`'s caller, as with runc), and its pid is no child of conmon,
# so conmon could neither log it nor wait on it. So `create` runs `runsc create`, then
# leaves a HOLDER behind: a child of conmon (conmon is a child subreaper) that keeps
# conmon's stdio pipes, and whose pid is what conmon is told to wait on. `start` (run
# by cricketd) wakes the holder through a fifo in the bundle; the holder runs
# `runsc start` (so the container's stdio are conmon's pipes: CRI logs and attach
# work), answers through a second fifo, then `runsc wait`s the container and exits
# with its exit status, which conmon writes to the exit file. The holder is conmon's
# child, so all of this survives a cricketd restart.
#
# Flags: the global runsc flags as usual, plus --cricket-runsc=PATH (the runsc binary;
# default /usr/bin/runsc), removed before runsc sees them.
set -u
runsc=/usr/bin/runsc
args=()
for a in "$@"; do
  case $a in
    --cricket-runsc=*) runsc=${a#*=} ;;
    *) args+=("$a") ;;
  esac
done

# The subcommand: the first word runsc knows as one (global flag values never are).
sub=-1
for i in "${!args[@]}"; do
  case ${args[$i]} in
    create|start|delete|state|kill|exec|wait|ps|events|update|pause|resume|list|port-forward|checkpoint|restore|debug|usage) sub=$i; break ;;
  esac
done
[ "$sub" -ge 0 ] || exec "$runsc" "${args[@]}"
globals=("${args[@]:0:$sub}")
cmd=${args[$sub]}
rest=("${args[@]:$((sub + 1))}")

# Moves pid $1 into the sandbox's memory cgroup: conmon watches OOM events in the cgroup
# of the pid it waits on, and the sandbox's is where all of gVisor's memory is charged
# (a pod over its limit loses its sandbox, and each container is reported OOMKilled).
move_to_sandbox_cgroup() {
  local spid ctrls path
  spid=$(cat "$bundle/runsc.pid" 2>/dev/null) || return 0
  [ -r "/proc/$spid/cgroup" ] || return 0
  while IFS=: read -r _ ctrls path; do
    case ",$ctrls," in
      *,memory,*) echo "$1" >"/sys/fs/cgroup/memory$path/cgroup.procs" 2>/dev/null ;;
      ,,) [ -f /sys/fs/cgroup/cgroup.controllers ] && echo "$1" >"/sys/fs/cgroup$path/cgroup.procs" 2>/dev/null ;;
    esac
  done <"/proc/$spid/cgroup"
  return 0
}

# The bundle of a container runsc knows, from `runsc state`.
bundle_of() {
  "$runsc" "${globals[@]}" state "$1" 2>/dev/null | sed -n 's/^ *"bundle": *"\(.*\)",\{0,1\}$/\1/p' | head -n 1
}

case $cmd in
  create)
    bundle='' pidfile='' console='' id=''
    pass=()
    while [ ${#rest[@]} -gt 0 ]; do
      a=${rest[0]}
      rest=("${rest[@]:1}")
      case $a in
        --bundle|-bundle|-b) bundle=${rest[0]}; rest=("${rest[@]:1}") ;;
        --bundle=*|-bundle=*) bundle=${a#*=} ;;
        --pid-file|-pid-file) pidfile=${rest[0]}; rest=("${rest[@]:1}") ;;
        --pid-file=*|-pid-file=*) pidfile=${a#*=} ;;
        --console-socket|-console-socket) console=${rest[0]}; rest=("${rest[@]:1}") ;;
        --console-socket=*|-console-socket=*) console=${a#*=} ;;
        -*) pass+=("$a") ;;
        *) id=$a ;;
      esac
    done
    [ -n "$bundle" ] && [ -n "$id" ] && [ -n "$pidfile" ] || { echo "cricket-runsc-join create: needs --bundle, --pid-file and an id" >&2; exit 2; }
    rm -f "$bundle/start" "$bundle/started"
    mkfifo -m 0600 "$bundle/start" "$bundle/started" || exit 1
    cflags=(--bundle "$bundle" --pid-file "$bundle/runsc.pid")
    [ -n "$console" ] && cflags+=(--console-socket "$console")
    "$runsc" "${globals[@]}" create "${pass[@]}" "${cflags[@]}" "$id" || exit $?
    # The holder: keeps this process's stdio (conmon's pipes) for the container's life.
    # stdin goes through fd 9: bash gives a background job /dev/null as its stdin.
    exec 9<&0
    (
      trap '' HUP
      exec 0<&9 9<&-
      exec 3<>"$bundle/start"
      read -r word <&3
      exec 3<&-
      if [ "$word" != start ]; then exit 137; fi # deleted before it was started
      "$runsc" "${globals[@]}" --log="$bundle/start.log" --log-format=text start "$id"
      rc=$?
      # The answer, opened read-write: a starter that gave up (timed out) leaves no reader,
      # and a plain write-open would block here for good, before the wait.
      {
        if [ $rc -eq 0 ]; then echo ok; else echo "runsc start exited with $rc: $(tail -c 1500 "$bundle/start.log" 2>/dev/null | tr '\n' ' ')"; fi
      } 1<>"$bundle/started"
      [ $rc -eq 0 ] || exit 128
      out=$("$runsc" "${globals[@]}" wait "$id" 2>"$bundle/wait.err" </dev/null)
      code=$(printf '%s' "$out" | sed -n 's/.*"exitStatus": *\([0-9]*\).*/\1/p')
      # No status: the sandbox itself went away (killed, OOM): as a SIGKILL.
      exit "${code:-137}"
    ) &
    move_to_sandbox_cgroup $!
    echo -n $! >"$bundle/holder.pid"
    echo -n $! >"$pidfile"
    exit 0
    ;;
  start)
    id=${rest[-1]}
    bundle=$(bundle_of "$id")
    [ -n "$bundle" ] && [ -p "$bundle/start" ] || { echo "cricket-runsc-join start: container $id has no holder fifo (bundle '${bundle}')" >&2; exit 1; }
    # Without its holder nothing would answer (conmon died, or it was killed).
    holder=$(cat "$bundle/holder.pid" 2>/dev/null)
    if [ -z "$holder" ] || ! grep -qF "$id" "/proc/$holder/cmdline" 2>/dev/null; then
      echo "cricket-runsc-join start: the holder of container $id is gone (did its conmon die?)" >&2
      exit 1
    fi
    # Opened read-write: neither open blocks, whether or not the other side is there.
    exec 4<>"$bundle/started" 5<>"$bundle/start"
    echo start >&5
    read -r reply <&4
    if [ "$reply" = ok ]; then exit 0; fi
    echo "$reply" >&2
    exit 1
    ;;
  delete)
    id=${rest[-1]}
    bundle=$(bundle_of "$id")
    "$runsc" "${globals[@]}" delete "${rest[@]}"
    rc=$?
    # A holder still waiting for its start ends with the container.
    if [ -n "$bundle" ] && [ -p "$bundle/start" ]; then
      exec 5<>"$bundle/start"
      echo delete >&5
    fi
    exit $rc
    ;;
  *)
    exec "$runsc" "${args[@]}"
    ;;
esac
