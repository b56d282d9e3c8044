#!/usr/bin/python3
"""Follows a lockstep job from Python: finds its coordinator in RUN_DIR/coordinator.json and the
user token in RUN_DIR/token, asks Control STATUS once, then prints the Watch stream's events until
the job ends, and last the job's result (RUN_DIR/result.json holds the same).

    python3 examples/python_client/watch_job.py RUN_DIR [--stubs DIR] [--wait-start S] [--interval S]

Needs Debian 12's python3-grpcio and python3-protobuf. The Python stubs come from proto/ with
Debian's protoc and grpc_python_plugin (protobuf-compiler, protobuf-compiler-grpc); python3-grpc-tools
1.14 bundles protoc 3.5.1, which rejects job.proto's proto3 `optional`. With --stubs DIR the stubs
are imported from DIR; without it they are generated into a temporary directory from the proto/
folder next to this example.

Exit status: 0 the job ended and its result was printed; 1 an error (one line on stderr).
"""
import argparse
import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time


def load_stubs(stubs_dir):
    """coordinator_pb2 and coordinator_pb2_grpc, from stubs_dir or generated from proto/."""
    if stubs_dir is None:
        protos = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "proto")
        plugin = shutil.which("grpc_python_plugin")
        if shutil.which("protoc") is None or plugin is None:
            sys.exit("watch_job.py: needs protoc and grpc_python_plugin "
                     "(apt-get install protobuf-compiler protobuf-compiler-grpc), or --stubs DIR")
        stubs_dir = tempfile.mkdtemp(prefix="lockstep_stubs_")
        atexit.register(shutil.rmtree, stubs_dir, True)
        subprocess.run(["protoc", "-I", protos, "--python_out=" + stubs_dir, "--grpc_python_out=" + stubs_dir,
                        "--plugin=protoc-gen-grpc_python=" + plugin,
                        os.path.join(protos, "job.proto"), os.path.join(protos, "coordinator.proto")], check=True)
    else:
        for stub in ("coordinator_pb2.py", "coordinator_pb2_grpc.py", "job_pb2.py"):
            if not os.path.isfile(os.path.join(stubs_dir, stub)):
                sys.exit(f"watch_job.py: --stubs {stubs_dir}: no {stub} there (generate it as the README says)")
    sys.path.insert(0, stubs_dir)
    import coordinator_pb2
    import coordinator_pb2_grpc
    return coordinator_pb2, coordinator_pb2_grpc


def read_json(path):
    with open(path) as f:
        return json.load(f)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir")
    p.add_argument("--stubs", help="directory holding coordinator_pb2.py and coordinator_pb2_grpc.py")
    p.add_argument("--wait-start", type=float, default=60, help="seconds to wait for coordinator.json")
    p.add_argument("--interval", type=float, default=10, help="seconds between STATUS events")
    a = p.parse_args()

    try:
        import grpc
    except ImportError:
        sys.exit("watch_job.py: python3-grpcio is not installed (apt-get install python3-grpcio)")
    pb, pb_grpc = load_stubs(a.stubs)
    from google.protobuf import json_format

    address_file = os.path.join(a.run_dir, "coordinator.json")
    result_file = os.path.join(a.run_dir, "result.json")
    deadline = time.monotonic() + a.wait_start
    while not os.path.exists(address_file):
        if os.path.exists(result_file):  # came late: the job has ended already
            print("RESULT " + json.dumps(read_json(result_file), sort_keys=True))
            return 0
        if time.monotonic() > deadline:
            sys.exit(f"watch_job.py: no {address_file} within {a.wait_start} s: is a job running there?")
        time.sleep(0.1)
    where = read_json(address_file)
    with open(where.get("token_file") or os.path.join(a.run_dir, "token")) as f:
        token = f.read().strip()
    if where["tls"]:
        sys.exit("watch_job.py: the coordinator speaks TLS; this example connects without it")
    metadata = [("lockstep-token", token)]

    channel = grpc.insecure_channel(where["address"])
    stub = pb_grpc.CoordinatorStub(channel)
    try:
        status = stub.Control(pb.ControlRequest(command=pb.ControlRequest.STATUS), metadata=metadata,
                              timeout=10).status
        print(f"STATUS job {status.job}: phase {pb.PhaseKind.Name(status.phase)}, "
              f"{status.registered}/{status.world_size} ranks registered, {status.epochs} epochs")
        result = None
        for e in stub.Watch(pb.WatchRequest(status_interval_s=a.interval), metadata=metadata):
            print(f"EVENT {e.seq} {pb.WatchEvent.Kind.Name(e.kind)} {e.message}", flush=True)
            if e.kind == pb.WatchEvent.FINISHED:
                result = json_format.MessageToDict(e.result, preserving_proto_field_name=True,
                                                   including_default_value_fields=True)
    except grpc.RpcError as err:
        # The coordinator went away before we heard the end (a killed launcher): the file may hold it.
        if err.code() == grpc.StatusCode.UNAVAILABLE and os.path.exists(result_file):
            print("RESULT " + json.dumps(read_json(result_file), sort_keys=True))
            return 0
        sys.exit(f"watch_job.py: coordinator at {where['address']}: {err.code().name}: {err.details()}")
    if result is None:
        sys.exit("watch_job.py: the Watch stream ended without a FINISHED event")
    # proto3 JSON writes 64-bit integers as strings; result.json writes numbers.
    for k in ("epochs", "epoch", "step"):
        result[k] = int(result[k])
    print("RESULT " + json.dumps(result, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
