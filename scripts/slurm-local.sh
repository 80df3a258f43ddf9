#!/usr/bin/env bash
# A real one-node SLURM on this machine, for the tests marked `slurm` and for trying
# hydra/launcher=batched_slurm by hand:
#   bash scripts/slurm-local.sh up      # install slurm-wlm, munge, slurmdbd and mariadb-server
#                                       # when missing, start them, wait for the node to be idle
#   bash scripts/slurm-local.sh down    # stop the daemons (the packages stay)
#   bash scripts/slurm-local.sh status  # sinfo
# Needs root (apt-get, daemons). The node is this machine with its CPUs and memory; its one
# partition is `debug`. State and logs: $SLURM_LOCAL_DIR (default /tmp/gradlab-slurm).
# Accounting (slurmdbd on a local MariaDB) is there because submitit reads a job's state with
# `sacct`: without it, a job killed before it wrote its result is never seen to end.
set -euo pipefail
DIR=${SLURM_LOCAL_DIR:-/tmp/gradlab-slurm}
NODE=$(hostname -s)

say() { echo "slurm-local: $*" >&2; }

install() {
  local c have=1
  for c in slurmctld slurmd slurmdbd munged mariadbd; do command -v "$c" >/dev/null || have=0; done
  [ "$have" = 1 ] && return
  [ "$(id -u)" = 0 ] || { say "error: not root: cannot install slurm-wlm, munge, slurmdbd"; exit 2; }
  say "installing slurm-wlm, munge, slurmdbd and mariadb-server (Debian packages)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends slurm-wlm munge slurmdbd mariadb-server \
    >/dev/null 2>&1
}

write_confs() {
  local cpus mem
  cpus=$(nproc)
  mem=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024))
  mkdir -p "$DIR/state" "$DIR/spool" /etc/slurm
  cat >/etc/slurm/slurm.conf <<CONF
# written by gradlab's scripts/slurm-local.sh: one node, this machine
ClusterName=gradlab
SlurmctldHost=$NODE
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
KillWait=30
MinJobAge=300
NodeName=$NODE CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
  cat >/etc/slurm/slurmdbd.conf <<CONF
# written by gradlab's scripts/slurm-local.sh
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
PidFile=$DIR/slurmdbd.pid
LogFile=$DIR/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=gradlab
StorageLoc=slurm_acct_db
CONF
  chmod 600 /etc/slurm/slurmdbd.conf
}

start_munge() {
  mkdir -p /etc/munge /run/munge /var/log/munge /var/lib/munge
  [ -s /etc/munge/munge.key ] || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
  chmod 400 /etc/munge/munge.key
  pgrep -x munged >/dev/null || runuser -u munge -- munged 2>/dev/null || munged --force
}

start_accounting() {
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
  if ! mysqladmin ping >/dev/null 2>&1; then
    (mysqld_safe --user=mysql >/dev/null 2>&1 &)
    for _ in $(seq 120); do mysqladmin ping >/dev/null 2>&1 && break; sleep 0.5; done
  fi
  mysql -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'gradlab';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
  pgrep -x slurmdbd >/dev/null || slurmdbd
  for _ in $(seq 120); do sacctmgr -n list cluster >/dev/null 2>&1 && break; sleep 0.5; done
  sacctmgr -i add cluster gradlab >/dev/null 2>&1 || true
}

idle() { sinfo -h -N -o '%T' 2>/dev/null | grep -qx idle; }

up() {
  install
  if idle && sacct -n >/dev/null 2>&1; then
    say "already up: $(sinfo -h -N -o '%N %T %c CPUs')"
    return
  fi
  write_confs
  start_munge
  start_accounting
  pgrep -x slurmctld >/dev/null || slurmctld
  pgrep -x slurmd >/dev/null || slurmd
  for _ in $(seq 120); do
    if idle; then
      say "up: $(sinfo -h -N -o '%N %T %c CPUs')"
      return
    fi
    scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true
    sleep 0.5
  done
  say "error: the node is not idle after 60 s: $(sinfo -h -N -o '%N %T %E' 2>&1); logs in $DIR"
  exit 1
}

running() {
  local d
  for d in slurmd slurmctld slurmdbd munged mariadbd; do pgrep -a -x "$d" || true; done
}

down() {
  local d
  for d in slurmd slurmctld slurmdbd munged; do pkill -x "$d" 2>/dev/null || true; done
  mysqladmin shutdown >/dev/null 2>&1 || true
  for _ in $(seq 60); do
    if [ -z "$(running)" ]; then
      say "down"
      return
    fi
    sleep 0.5
  done
  say "error: still running: $(running | tr '\n' ' ')"
  exit 1
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) sinfo ;;
  *)
    echo "usage: $0 up|down|status" >&2
    exit 2
    ;;
esac
