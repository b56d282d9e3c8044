#!/usr/bin/env bash
# Slurm and preemption against a real single-node Slurm (Debian's slurm-wlm and munge), started
# here on loopback with a generated slurm.conf and stopped at the end (CTest SlurmPreemption):
#   1. `salloc -n 2 lockstep launch JOB`: the reference run; launch starts its 2 workers through
#      srun in the allocation (and refuses -n 3 there, naming the allocation's 2 tasks).
#   2. `lockstep coordinator` + `srun -n 2 --mpi=pmix lockstep worker`: the same job; once it trains,
#      `scancel --signal=USR1` delivers Slurm's preemption warning. Every rank checkpoints at one
#      agreed step and srun exits 3 ("requeue me").
#   3. `salloc -n 2 lockstep launch JOB --resume` finishes it: every step's loss and every epoch's
#      test figures equal the reference run's, to the last printed digit (17 significant).
# Exits 77 (CTest: skipped) only when the tools are missing or the daemons cannot start, saying why.
# usage: tests/slurm/slurm_preempt_test.sh LOCKSTEP_EXE DATA_DIR
set -euo pipefail

exe=$1
data=${2:-/usr/share/datasets/fashion-mnist}
name=SlurmPreemption
skip() { echo "$name: SKIPPED: $*"; exit 77; }
fail() {
  echo "$name: FAILED: $*" >&2
  for f in "$T"/log/*.log "$T"/*.out; do [[ -f $f ]] && { echo "--- $f" >&2; tail -n 25 "$f" >&2; }; done
  exit 1
}

for tool in munged slurmctld slurmd srun salloc scontrol scancel squeue sinfo; do
  command -v "$tool" >/dev/null || skip "$tool is not installed (Debian packages slurm-wlm and munge; scripts/setup.sh)"
done

T=$(mktemp -d /tmp/lockstep-slurm-XXXXXX)
chmod 700 "$T"
mkdir -p "$T"/{munge,state,spool,log}
for v in $(env | grep -o '^SLURM_[A-Z_]*'); do unset "$v"; done  # a Slurm job around this test is not ours
export SLURM_CONF=$T/slurm.conf

stop_pidfile() {  # SIGTERM, then SIGKILL after 5 s, of the daemon whose pid the file holds
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 0
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}
cleanup() {
  set +e
  if [[ -f $T/slurmctld.pid ]]; then
    jobs=$(squeue -h -o %i 2>/dev/null)
    [[ -n $jobs ]] && scancel $jobs 2>/dev/null
    for _ in $(seq 50); do [[ -z $(squeue -h -o %i 2>/dev/null) ]] && break; sleep 0.1; done
  fi
  [[ -n ${coord_pid:-} ]] && kill "$coord_pid" 2>/dev/null
  stop_pidfile "$T/slurmd.pid"
  stop_pidfile "$T/slurmctld.pid"
  stop_pidfile "$T/munge/munged.pid"
  rm -rf "$T"
}
trap cleanup EXIT

# Two TCP ports nothing listens on, for slurmctld and slurmd (the configuration must name them).
free_port() {
  local p
  for _ in $(seq 100); do
    p=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
  skip "no free TCP port found for the Slurm daemons"
}
ctld_port=$(free_port)
slurmd_port=$(free_port)
[[ $ctld_port != "$slurmd_port" ]] || slurmd_port=$((ctld_port + 1))

# munge: a fresh key, its own socket.
dd if=/dev/urandom of="$T/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$T/munge/munge.key"
munged -f --key-file="$T/munge/munge.key" --socket="$T/munge/socket" --pid-file="$T/munge/munged.pid" \
  --log-file="$T/log/munged.log" --seed-file="$T/munge/seed" 2>"$T/log/munged.err" ||
  skip "munged cannot start: $(tail -n 1 "$T/log/munged.err")"

host=$(hostname -s)
cat > "$SLURM_CONF" <<CONF
ClusterName=lockstep-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=$(id -un)
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$T/munge/socket
CredType=cred/munge
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/log/slurmctld.log
SlurmdLogFile=$T/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/builtin
KillWait=10
NodeName=$host NodeAddr=127.0.0.1 CPUs=2 State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF

slurmctld -i 2>"$T/log/slurmctld.err" || skip "slurmctld cannot start: $(tail -n 1 "$T/log/slurmctld.err")"
slurmd 2>"$T/log/slurmd.err" || skip "slurmd cannot start: $(tail -n 1 "$T/log/slurmd.err")"
up=0
for _ in $(seq 100); do
  [[ $(sinfo -h -o %T 2>/dev/null) == idle ]] && { up=1; break; }
  sleep 0.2
done
[[ $up == 1 ]] || skip "the Slurm node did not come up within 20 s: $(tail -n 1 "$T/log/slurmd.log" 2>/dev/null)"
echo "$name: slurmctld and slurmd up on 127.0.0.1:$ctld_port/$slurmd_port"

# The job: fmnist-mlp, 2 epochs of 468 steps (global batch 128, 64 per rank), eval at each epoch end.
job=$T/job.textproto
cat > "$job" <<JOB
name: "slurm-test"
model { reference: "fmnist-mlp" }
data { dir: "$data" }
optimizer { lr: 0.05 sgd { momentum: 0.9 } }
seed: 7
epochs: 2
batch_size: 128
distributed { collective_timeout_s: 30 }
JOB

# step -> loss, and epoch -> train_loss test_loss test_accuracy, as printed; a step or epoch logged
# twice (a resumed run redoes the steps after its checkpoint) keeps its newest line.
step_losses() { grep -o '"kind":"step",[^}]*' "$1" | sed -E 's/.*"step":([0-9]+),"loss":([^,]+).*/\1 \2/' | awk '{ last[$1] = $2 } END { for (s in last) print s, last[s] }' | sort -n; }
epoch_lines() { grep -o '"kind":"epoch",[^}]*' "$1" | sed -E 's/.*"epoch":([0-9]+),.*"train_loss":([^,]+).*"test_loss":([^,]+).*"test_accuracy":([^,]+).*/\1 \2 \3 \4/' | awk '{ last[$1] = $0 } END { for (e in last) print last[e] }' | sort -n; }

# 1. Reference: uninterrupted, lockstep launch inside an allocation.
rc=0
timeout -k 5 120 salloc -n 2 -J lockstep-ref "$exe" launch "$job" --run-dir "$T/ref" >"$T/ref.out" 2>&1 || rc=$?
[[ $rc == 0 ]] || fail "the reference run (salloc -n 2 lockstep launch) exited $rc"
grep -q "workers start through srun" "$T/ref.out" || fail "lockstep launch inside the allocation did not start its workers through srun"

# More ranks than the allocation has tasks: refused before anything starts, in one line.
rc=0
timeout -k 5 60 salloc -n 2 -J lockstep-too-many "$exe" launch -n 3 "$job" --run-dir "$T/none" >"$T/too-many.out" 2>&1 || rc=$?
[[ $rc == 2 ]] || fail "launch -n 3 in a 2-task allocation exited $rc, expected 2 (bad input)"
grep -q "^lockstep: error: -n 3: the Slurm allocation (job [0-9]*, nodes $host) has 2 tasks" "$T/too-many.out" ||
  fail "launch -n 3 in a 2-task allocation: $(grep error "$T/too-many.out")"
[[ ! -e $T/none ]] || fail "a refused launch created its run directory"

# 2. Preempted: coordinator + srun workers; USR1 through scancel once it trains.
"$exe" coordinator "$job" -n 2 --run-dir "$T/pre" >"$T/coordinator.out" 2>&1 &
coord_pid=$!
addr=""
for _ in $(seq 300); do  # it checks the job and data first: seconds on a loaded machine
  addr=$(grep -o 'coordinator listening on [^ ]*' "$T/coordinator.out" | awk '{print $4}') && [[ -n $addr ]] && break
  sleep 0.1
done
[[ -n $addr ]] || fail "lockstep coordinator did not start"
LOCKSTEP_WORKER_SECRET_FILE=$T/pre/worker_secret timeout -k 5 120 \
  srun -n 2 --mpi=pmix -J lockstep-preempt "$exe" worker --coordinator "$addr" >"$T/workers.out" 2>&1 &
srun_pid=$!
job_id=""
for _ in $(seq 600); do
  job_id=$(squeue -h -n lockstep-preempt -o %i)
  [[ -n $job_id ]] && grep -q '"step":20,' "$T/pre/metrics.jsonl" 2>/dev/null && break
  kill -0 "$srun_pid" 2>/dev/null || break
  sleep 0.1
done
[[ -n $job_id ]] && grep -q '"step":20,' "$T/pre/metrics.jsonl" || fail "the srun job did not reach step 20"
scancel --signal=USR1 "$job_id"
rc=0
wait "$srun_pid" || rc=$?
[[ $rc == 3 ]] || fail "srun exited $rc after the preemption signal; expected 3 (stopped at a checkpoint: requeue)"
grep -q "stopped on a signal at step" "$T/workers.out" || fail "rank 0 did not report its stop on the signal"
ckpt=$(ls "$T/pre/checkpoints" | grep '^ckpt-' | tail -n 1)
[[ -n $ckpt ]] || fail "no checkpoint after the preemption signal"
stop_step=$((10#${ckpt#ckpt-}))
total=$(step_losses "$T/ref/metrics.jsonl" | wc -l)
((stop_step > 20 && stop_step < total)) || fail "stopped at step $stop_step, expected between 20 and $total (the signal came too late?)"
rc=0
wait "$coord_pid" || rc=$?
coord_pid=""
[[ $rc == 0 ]] || fail "lockstep coordinator exited $rc after the job stopped"
echo "$name: USR1 -> checkpoint $ckpt (step $stop_step of $total), srun exit 3"

# 3. Resume in a new allocation; the whole run must equal the reference, step by step.
rc=0
timeout -k 5 120 salloc -n 2 -J lockstep-resume "$exe" launch "$job" --run-dir "$T/pre" --resume >"$T/resume.out" 2>&1 || rc=$?
[[ $rc == 0 ]] || fail "the resumed run (salloc -n 2 lockstep launch --resume) exited $rc"
grep -q "resuming from .*step $stop_step" "$T/resume.out" || fail "the resumed run did not start from step $stop_step"
diff <(step_losses "$T/ref/metrics.jsonl") <(step_losses "$T/pre/metrics.jsonl") >"$T/diff.out" ||
  fail "per-step losses differ from the uninterrupted run: $(head -n 4 "$T/diff.out")"
diff <(epoch_lines "$T/ref/metrics.jsonl") <(epoch_lines "$T/pre/metrics.jsonl") >"$T/diff.out" ||
  fail "epoch figures differ from the uninterrupted run: $(head -n 4 "$T/diff.out")"
echo "$name: resumed run equals the uninterrupted one at all $total steps and both epochs"
