#!/usr/bin/python3
"""The control plane as a Python script meets it (examples/python_client/watch_job.py), with Debian's
python3-grpcio and stubs generated exactly as the README says (protoc + grpc_python_plugin): a
2-rank, 2-epoch job is launched, the example follows it from its run directory alone, and must
see the first STATUS, each planned phase reported, and a FINISHED whose result equals
RUN_DIR/result.json, whose figures equal the last epoch line of metrics.jsonl. After the launcher
exits, coordinator.json is gone and `lockstep ctl --run-dir` says so.

usage: python_client_test.py LOCKSTEP_EXE SOURCE_DIR DATA_DIR    (exit 77: python3-grpcio missing)
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

try:
    import grpc  # noqa: F401
except ImportError:
    print("SKIP: python3-grpcio is not installed (apt-get install python3-grpcio)")
    sys.exit(77)

exe, src, data = sys.argv[1:4]
failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL: " + what)


work = tempfile.mkdtemp(prefix="lockstep_pyclient_")
try:
    # The README's command, verbatim but for OUT.
    stubs = os.path.join(work, "stubs")
    os.makedirs(stubs)
    subprocess.run(["protoc", "-I", os.path.join(src, "proto"), "--python_out=" + stubs, "--grpc_python_out=" + stubs,
                    "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin",
                    os.path.join(src, "proto/job.proto"), os.path.join(src, "proto/coordinator.proto")], check=True)

    job = os.path.join(work, "job.textproto")
    with open(job, "w") as f:
        f.write('name: "py-client"\nmodel { reference: "fmnist-mlp" }\ndata { dir: "%s" }\n'
                'optimizer { lr: 0.05 sgd { momentum: 0.9 } }\nseed: 7\nepochs: 2\nbatch_size: 128\n' % data)
    run = os.path.join(work, "run")
    launch = subprocess.Popen(["timeout", "-k", "5", "120", exe, "launch", "-n", "2", job, "--run-dir", run],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    client = subprocess.run(["timeout", "-k", "5", "120", sys.executable,
                             os.path.join(src, "examples/python_client/watch_job.py"), run, "--stubs", stubs,
                             "--interval", "1"], capture_output=True, text=True)
    launch_out, _ = launch.communicate(timeout=130)
    print(client.stdout + client.stderr)
    check(launch.returncode == 0, "launch exited %d:\n%s" % (launch.returncode, launch_out))
    check(client.returncode == 0, "the example exited %d" % client.returncode)

    lines = client.stdout.splitlines()
    events = [l.split(" ", 3) for l in lines if l.startswith("EVENT ")]
    kinds = [e[2] for e in events]
    check(lines and lines[0].startswith("STATUS job py-client"), "no Control STATUS line first")
    check(kinds[:1] == ["STATUS"], "the stream did not start with STATUS: %s" % kinds[:3])
    check(kinds[-1:] == ["FINISHED"], "the stream did not end with FINISHED: %s" % kinds[-3:])
    check([int(e[1]) for e in events] == list(range(1, len(events) + 1)), "seq is not 1, 2, 3, ...")
    reported = [e[3].split(" ")[0] for e in events if e[2] == "PHASE_REPORTED"]
    # Whenever the watcher came in, it saw the last epoch's plan and the job's stop.
    check(reported[-3:] == ["EVAL", "CHECKPOINT", "STOP"], "phases reported: %s" % reported)
    check(any(e[2] == "PHASE" and "epoch 2 ended: EVAL, CHECKPOINT next" in e[3] for e in events),
          "no PHASE event for epoch 2's plan")

    result_lines = [l[len("RESULT "):] for l in lines if l.startswith("RESULT ")]
    check(len(result_lines) == 1, "no RESULT line")
    with open(os.path.join(run, "result.json")) as f:
        on_disk = json.load(f)
    if result_lines:
        check(json.loads(result_lines[0]) == on_disk, "FINISHED differs from result.json:\n%s\n%s" %
              (result_lines[0], json.dumps(on_disk, sort_keys=True)))
    epochs = [json.loads(l) for l in open(os.path.join(run, "metrics.jsonl")) if '"kind":"epoch"' in l]
    last = epochs[-1]
    check(on_disk["exit_status"] == 0 and on_disk["finished"] and on_disk["complete"], "not a complete job")
    check(on_disk["epoch"] == 2 == last["epoch"] and on_disk["epochs"] == 2, "epochs differ")
    check(abs(on_disk["last_test_accuracy"] - last["test_accuracy"]) < 1e-6, "accuracy differs from metrics.jsonl")
    check(abs(on_disk["last_test_loss"] - last["test_loss"]) < 1e-6, "test loss differs from metrics.jsonl")
    check([(t["k"], round(t["accuracy"], 6)) for t in on_disk["last_top_k_accuracy"]] ==
          [(int(k), round(v, 6)) for k, v in last["top_k_accuracy"].items()], "top-k differs from metrics.jsonl")
    check(os.path.isdir(on_disk["last_checkpoint"]), "last_checkpoint %s is no directory" % on_disk["last_checkpoint"])

    # The launcher has exited: no address left behind, and ctl says where to look instead.
    check(not os.path.exists(os.path.join(run, "coordinator.json")), "coordinator.json outlived the launcher")
    ctl = subprocess.run(["timeout", "30", exe, "ctl", "status", "--run-dir", run], capture_output=True, text=True)
    check(ctl.returncode == 4 and "no coordinator.json" in ctl.stderr and "result.json" in ctl.stderr,
          "ctl --run-dir after the end: %d %s" % (ctl.returncode, ctl.stderr))
    # A script that comes late still finds the result.
    late = subprocess.run(["timeout", "30", sys.executable, os.path.join(src, "examples/python_client/watch_job.py"),
                           run, "--stubs", stubs, "--wait-start", "0"], capture_output=True, text=True)
    check(late.returncode == 0 and ("RESULT " + json.dumps(on_disk, sort_keys=True)) in late.stdout,
          "a late script: %d %s %s" % (late.returncode, late.stdout, late.stderr))
finally:
    shutil.rmtree(work, ignore_errors=True)

if failures:
    sys.exit("%d check(s) failed" % len(failures))
print("OK")
