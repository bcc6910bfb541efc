#!/usr/bin/env bash
# Start a real one-node SLURM cluster on this machine, for tests and CI.
#
# Runs as root on Debian (bookworm: SLURM 22.05) without systemd: the daemons are started
# directly (munged as user munge, then slurmctld and slurmd). Safe to run again: packages,
# munge key and config are only (re)written when missing or different, running daemons are
# kept unless the config changed, and the script always ends by waiting for the node to be
# usable.
#
# Environment:
#   WCONV_SLURM_PARTITION      partition name (default: debug)
#   WCONV_SLURM_START_TIMEOUT  seconds to wait for the node (default: 90)
#
# The config goes to /etc/slurm (where every SLURM client looks, so sbatch/sinfo/snakemake need
# no SLURM_CONF). A slurm.conf there that this script did not write is never overwritten.
set -euo pipefail

PARTITION=${WCONV_SLURM_PARTITION:-debug}
URGENT=urgent # preempts jobs of $PARTITION
TIMEOUT=${WCONV_SLURM_START_TIMEOUT:-90}
CONF_DIR=/etc/slurm
MARKER="# Written by wconv tests/cluster/start_slurm.sh - do not edit, rerun the script."
NODE=$(hostname -s)
LOG_DIR=/var/log/slurm
STATE_DIR=/var/lib/slurm

die() {
    echo "start_slurm.sh: error: $*" >&2
    exit 1
}
say() { echo "start_slurm.sh: $*"; }

[[ $PARTITION =~ ^[A-Za-z0-9_-]+$ ]] ||
    die "WCONV_SLURM_PARTITION='$PARTITION' is not a valid partition name (letters, digits, _ and -)"
[[ $TIMEOUT =~ ^[0-9]+$ ]] || die "WCONV_SLURM_START_TIMEOUT='$TIMEOUT' is not a number of seconds"
[[ $(id -u) -eq 0 ]] || die "must run as root (it installs packages and starts daemons); try: sudo $0"

# --- 1. packages -------------------------------------------------------------------------------
need_install=0
for exe in /usr/sbin/slurmctld /usr/sbin/slurmd /usr/bin/sbatch /usr/bin/sinfo /usr/sbin/munged; do
    [[ -x $exe ]] || need_install=1
done
if ((need_install)); then
    command -v apt-get >/dev/null || die "SLURM is not installed and apt-get is missing; install slurmctld slurmd slurm-client munge"
    say "installing slurmctld slurmd slurm-client munge (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Without systemd the packages' postinst cannot start services; that is expected and harmless.
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
fi

# --- 2. munge ----------------------------------------------------------------------------------
# The key is normally created by the munge package; create it when an image shipped without one.
if [[ ! -s /etc/munge/munge.key ]]; then
    say "creating /etc/munge/munge.key"
    install -d -o munge -g munge -m 0700 /etc/munge
    mungekey --create --keyfile=/etc/munge/munge.key --force
    chown munge:munge /etc/munge/munge.key
    chmod 0600 /etc/munge/munge.key
fi

munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

if ! munge_ok; then
    say "starting munged"
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
    runuser -u munge -- /usr/sbin/munged
    for _ in $(seq 50); do
        munge_ok && break
        sleep 0.1
    done
    munge_ok || die "munged did not come up; see /var/log/munge/munged.log"
fi

# --- 3. configuration ---------------------------------------------------------------------------
# Node hardware exactly as slurmd detects it (CPUs, sockets, cores, threads, RealMemory); a node
# declaring more than it has would be marked INVALID by slurmctld.
hw=$(slurmd -C | head -n 1) || die "'slurmd -C' failed; cannot detect this machine's CPUs/memory"
[[ $hw == NodeName=* ]] || die "unexpected 'slurmd -C' output: $hw"
hw=${hw#NodeName=* }
cpus=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$hw")
mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")
[[ -n $cpus && -n $mem ]] || die "could not parse CPUs/RealMemory from 'slurmd -C': $hw"

new_conf=$(
    cat <<EOF
$MARKER
# One-node test cluster: controller and compute node are this machine ($NODE).
ClusterName=wconv
SlurmctldHost=$NODE
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true
# No cgroups here (containers/VMs without a delegated cgroup tree): track job processes through
# /proc and do no CPU binding; no job accounting database (sacct answers from slurmctld's memory).
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
# Jobs may be requeued (scontrol requeue, preemption, sbatch --requeue); a node that restarts
# comes back on its own.
JobRequeue=1
ReturnToService=2
# Preemption as on shared clusters: a job in the high-priority partition "$URGENT" requeues the
# jobs of "$PARTITION" it needs room from; they get SIGCONT+SIGTERM, then GraceTime seconds before
# SIGKILL (the same signals as scontrol requeue, scancel and the time limit).
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
# Finished jobs stay visible to squeue/sacct for 5 minutes (snakemake polls their state).
MinJobAge=300
# Seconds between SIGTERM and SIGKILL on scancel / time limit (SLURM's default).
KillWait=30
StateSaveLocation=$STATE_DIR/slurmctld
SlurmdSpoolDir=$STATE_DIR/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
DefMemPerCPU=$((mem / cpus))
NodeName=$NODE $hw Gres=gpu:1 State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP PriorityTier=1 GraceTime=30
PartitionName=$URGENT Nodes=$NODE Default=NO MaxTime=INFINITE State=UP PriorityTier=2 PreemptMode=OFF
EOF
)
# A fake GPU: a GRES needs a device file; /dev/null lets jobs request --gpus 1 on a CPU machine.
new_gres=$(printf '%s\nName=gpu File=/dev/null\n' "$MARKER")

install -d -m 0755 "$CONF_DIR"
changed=0
write_if_changed() { # path content
    local path=$1 content=$2
    if [[ -e $path ]]; then
        grep -qxF "$MARKER" "$path" ||
            die "$path exists and was not written by this script; move it away to use the test cluster"
        [[ $(cat "$path") == "$content" ]] && return 0
    fi
    printf '%s\n' "$content" >"$path.tmp.$$"
    chmod 0644 "$path.tmp.$$"
    mv -f "$path.tmp.$$" "$path"
    changed=1
}
write_if_changed "$CONF_DIR/slurm.conf" "$new_conf"
write_if_changed "$CONF_DIR/gres.conf" "$new_gres"

# --- 4. daemons ---------------------------------------------------------------------------------
running() { # pidfile name -> succeeds when that daemon runs
    local pid
    pid=$(cat "$1" 2>/dev/null) || return 1
    [[ -n $pid && $(cat "/proc/$pid/comm" 2>/dev/null) == "$2" ]]
}

install -d -m 0755 "$LOG_DIR" "$STATE_DIR/slurmctld" "$STATE_DIR/slurmd"
if ((changed)) && { running /run/slurmctld.pid slurmctld || running /run/slurmd.pid slurmd; }; then
    say "configuration changed; restarting slurmctld and slurmd"
    "$(dirname "$0")/stop_slurm.sh" --keep-munge
fi
if ! running /run/slurmctld.pid slurmctld; then
    say "starting slurmctld"
    /usr/sbin/slurmctld || die "slurmctld failed to start; see $LOG_DIR/slurmctld.log"
fi
if ! running /run/slurmd.pid slurmd; then
    say "starting slurmd"
    /usr/sbin/slurmd || die "slurmd failed to start; see $LOG_DIR/slurmd.log"
fi

# --- 5. wait for the node -------------------------------------------------------------------------
fail() { # message: print it with the cluster's state and the daemons' last log lines, then exit 1
    {
        echo "start_slurm.sh: error: $1"
        sinfo -N -l 2>&1 || true
        echo "--- $LOG_DIR/slurmctld.log (tail)"
        tail -n 20 "$LOG_DIR/slurmctld.log" 2>&1 || true
        echo "--- $LOG_DIR/slurmd.log (tail)"
        tail -n 20 "$LOG_DIR/slurmd.log" 2>&1 || true
    } >&2
    exit 1
}

start=$SECONDS
resumed=0
state=""
while ((SECONDS - start < TIMEOUT)); do
    # Both daemons fork before reading their state; a fatal config error shows up as an exit.
    if ((SECONDS - start >= 3)); then
        running /run/slurmctld.pid slurmctld || fail "slurmctld exited"
        running /run/slurmd.pid slurmd || fail "slurmd exited"
    fi
    state=$(sinfo -h -n "$NODE" -p "$PARTITION" -o %T 2>/dev/null | head -n 1 || true)
    case $state in
        idle | mixed | allocated | completing)
            say "node $NODE is $state in partition $PARTITION ($(sinfo --version))"
            exit 0
            ;;
        *drain* | down* | *fail*)
            # Left over from an earlier run (e.g. killed daemons); the node is fine now.
            if ((!resumed)); then
                scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true
                resumed=1
            fi
            ;;
    esac
    sleep 1
done
fail "node $NODE not usable after ${TIMEOUT}s (state: '${state:-none}')"
