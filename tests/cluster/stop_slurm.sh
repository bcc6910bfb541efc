#!/usr/bin/env bash
# Stop the one-node test cluster started by start_slurm.sh: slurmd, slurmctld, then munged.
#
# Only the processes named in the daemons' pid files are signalled (after checking the process
# name), so nothing else on the machine is touched. Safe to run when nothing is running.
#   --keep-munge   leave munged running (used by start_slurm.sh when it restarts SLURM)
set -euo pipefail

keep_munge=0
case ${1:-} in
    --keep-munge) keep_munge=1 ;;
    "") ;;
    *)
        echo "usage: $0 [--keep-munge]" >&2
        exit 2
        ;;
esac

stop_daemon() { # pidfile process-name
    local pidfile=$1 name=$2 pid
    pid=$(cat "$pidfile" 2>/dev/null) || return 0
    if [[ -z $pid || $(cat "/proc/$pid/comm" 2>/dev/null) != "$name" ]]; then
        return 0 # stale pid file: the daemon is not running
    fi
    echo "stop_slurm.sh: stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 100); do
        [[ -d /proc/$pid ]] || return 0
        sleep 0.1
    done
    echo "stop_slurm.sh: $name (pid $pid) ignored SIGTERM for 10 s; sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
}

stop_daemon /run/slurmd.pid slurmd
stop_daemon /run/slurmctld.pid slurmctld
((keep_munge)) || stop_daemon /run/munge/munged.pid munged
