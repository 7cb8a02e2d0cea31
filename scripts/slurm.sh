#!/usr/bin/env bash
# A single-node Slurm on this machine, for testing `snakemake --profile profiles/slurm`.
#
#   bash scripts/slurm.sh up      install (Debian packages, if missing), configure, start, wait idle
#   bash scripts/slurm.sh down    stop slurmd, slurmctld and munged, each by the PID in its pid file
#   bash scripts/slurm.sh status  print the daemons' PIDs and `sinfo`
#
# Needs root on Debian/Ubuntu without systemd (a CI container). It writes /etc/slurm/slurm.conf
# and gres.conf (refusing to replace ones it did not write), keeps state, logs and pid files in
# $REPROSUITE_SLURM_DIR (default /tmp/reprosuite-slurm) and offers two scheduling-only GPUs
# (`--gpus=1` schedules; there is no CUDA behind them) and two partitions on the one node,
# `debug` (default) and `gpu`, to try partition selection. Nothing is started through systemd.
# Facts it relies on: no accounting (so the profile's status command must be squeue) and
# MinJobAge=600 (the executor plugin falls back to sacct when MinJobAge < 3 x its init seconds).
set -euo pipefail

STATE=${REPROSUITE_SLURM_DIR:-/tmp/reprosuite-slurm}
CONF_DIR=/etc/slurm
MARK="# written by reprosuite scripts/slurm.sh"
MUNGE_PID=/run/munge/munged.pid
CTLD_PID=$STATE/slurmctld.pid
SLURMD_PID=$STATE/slurmd.pid

say() { echo "slurm.sh: $*" >&2; }
die() { say "$*"; exit 1; }

alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

install_packages() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
        && command -v munged >/dev/null && return 0
    [[ $(id -u) -eq 0 ]] || die "Slurm is not installed and installing it needs root"
    command -v apt-get >/dev/null || die "Slurm is not installed and this is not a Debian-like system (no apt-get)"
    say "installing slurmctld slurmd slurm-client munge (Debian packages)"
    # postinst must not start services: without a policy-rc.d saying no, add one for the install
    local policy=/usr/sbin/policy-rc.d added=0
    if [[ ! -e $policy ]]; then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; added=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        slurmctld slurmd slurm-client munge >"$STATE/apt.log" 2>&1 \
        || { DEBIAN_FRONTEND=noninteractive apt-get update -q >>"$STATE/apt.log" 2>&1 \
             && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
                slurmctld slurmd slurm-client munge >>"$STATE/apt.log" 2>&1; } \
        || { [[ $added -eq 1 ]] && rm -f "$policy"; die "apt-get install failed; see $STATE/apt.log"; }
    [[ $added -eq 1 ]] && rm -f "$policy"
    return 0
}

write_conf() {
    local file
    for file in "$CONF_DIR/slurm.conf" "$CONF_DIR/gres.conf"; do
        if [[ -e $file ]] && ! grep -qF "$MARK" "$file"; then
            [[ ${REPROSUITE_SLURM_FORCE:-0} == 1 ]] || die "$file exists and was not written by this script; \
refusing to replace it (set REPROSUITE_SLURM_FORCE=1 to override)"
        fi
    done
    # hardware from slurmd -C; RealMemory ~90% of what it sees (more than exists drains the node)
    local hw sockets cores threads mem
    hw=$(slurmd -C | head -1)
    sockets=$(sed -n 's/.*SocketsPerBoard=\([0-9]*\).*/\1/p' <<<"$hw")
    cores=$(sed -n 's/.*CoresPerSocket=\([0-9]*\).*/\1/p' <<<"$hw")
    threads=$(sed -n 's/.*ThreadsPerCore=\([0-9]*\).*/\1/p' <<<"$hw")
    mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")
    mem=$((mem * 9 / 10))
    mkdir -p "$CONF_DIR" "$STATE/ctld" "$STATE/slurmd"
    chown slurm:slurm "$STATE/ctld"
    cat >"$CONF_DIR/slurm.conf" <<EOF
$MARK (single-node test cluster; state in $STATE)
ClusterName=reprosuite
SlurmctldHost=localhost
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=512
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MinJobAge=600
ReturnToService=2
GresTypes=gpu
NodeName=localhost NodeAddr=127.0.0.1 Sockets=$sockets CoresPerSocket=$cores ThreadsPerCore=$threads RealMemory=$mem Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=localhost MaxTime=INFINITE State=UP
EOF
    # scheduling-only GPUs: a count needs device files, these are /dev/null's numbers
    local i
    for i in 0 1; do [[ -e /dev/fakegpu$i ]] || mknod -m 666 /dev/fakegpu$i c 1 3; done
    printf '%s\nNodeName=localhost Name=gpu File=/dev/fakegpu[0-1]\n' "$MARK" >"$CONF_DIR/gres.conf"
}

start_daemons() {
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    chmod 0755 /run/munge
    [[ -s /etc/munge/munge.key ]] || die "/etc/munge/munge.key is missing (reinstall munge)"
    if ! alive "$MUNGE_PID"; then
        runuser -u munge -- munged --pid-file="$MUNGE_PID" || die "munged did not start; see /var/log/munge/munged.log"
    fi
    if ! alive "$CTLD_PID"; then
        slurmctld || die "slurmctld did not start; see $STATE/slurmctld.log"
    fi
    if ! alive "$SLURMD_PID"; then
        slurmd -N localhost || die "slurmd did not start; see $STATE/slurmd.log"
    fi
    local i state=""
    for i in $(seq 1 60); do
        state=$(sinfo -h -N -n localhost -o %T 2>/dev/null | head -1 || true)
        [[ $state == idle* || $state == mixed* || $state == allocated* ]] && { say "up: node localhost is $state (${i}s)"; return 0; }
        sleep 1
    done
    die "node localhost is '${state:-unknown}' after 60 s; see $STATE/slurmctld.log and $STATE/slurmd.log"
}

stop_one() {  # stop_one NAME PIDFILE
    local name=$1 file=$2 pid i
    [[ -s $file ]] || return 0
    pid=$(cat "$file")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        if kill -0 "$pid" 2>/dev/null; then say "$name ($pid) ignored SIGTERM; SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; fi
        say "stopped $name ($pid)"
    fi
    rm -f "$file"
}

down() {
    if alive "$CTLD_PID"; then scancel --full --quiet --user="$(id -un)" 2>/dev/null || true; fi
    stop_one slurmd "$SLURMD_PID"
    stop_one slurmctld "$CTLD_PID"
    stop_one munged "$MUNGE_PID"
    return 0
}

case "${1:-}" in
    up)
        mkdir -p "$STATE"
        install_packages
        write_conf
        start_daemons
        ;;
    down) down ;;
    status)
        for f in "$MUNGE_PID" "$CTLD_PID" "$SLURMD_PID"; do
            if alive "$f"; then echo "$(basename "$f" .pid) $(cat "$f")"; else echo "$(basename "$f" .pid) not running"; fi
        done
        sinfo 2>/dev/null || true
        ;;
    *) echo "usage: bash scripts/slurm.sh up|down|status" >&2; exit 2 ;;
esac
