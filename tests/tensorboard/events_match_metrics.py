#!/usr/bin/env python3
"""TensorBoard events files read back by a reader of their own: a short `lockstep launch` on 2 ranks
(2 epochs on a subset of Fashion-MNIST, clip_grad on, a per-step lr schedule, top-3 accuracy),
then a resume that trains one epoch more, a launch with --overwrite, and `lockstep train` with the
events file on and off.

Every record's length and data CRC-32C are checked with this file's own bitwise CRC-32C; the Event
protos are decoded through a descriptor built here from TensorBoard's field numbers
(tensorboard/compat/proto/event.proto and summary.proto), not from lockstep's .proto; and every
number of every step, epoch and rank line of metrics.jsonl must be found under its tag at its step,
equal to the JSON value rounded to float32, with nothing else in the events files.

usage: events_match_metrics.py LOCKSTEP_EXE FASHION_MNIST_DIR
"""
import gzip
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

TRAIN_SAMPLES, TEST_SAMPLES = 1024, 256
BATCH = 64
STEPS_PER_EPOCH = TRAIN_SAMPLES // BATCH
LAUNCH_LIMIT_S = 120


def crc32c(data):
    """CRC-32C (Castagnoli), bit by bit from the reflected polynomial."""
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked(crc):
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def event_class():
    """tensorboard.Event with TensorBoard's names and numbers, the members lockstep may write."""
    F = descriptor_pb2.FieldDescriptorProto
    f = descriptor_pb2.FileDescriptorProto(name="tb_reader_test.proto", package="tensorboard", syntax="proto3")
    ev = f.message_type.add(name="Event")
    ev.oneof_decl.add(name="what")
    ev.field.add(name="wall_time", number=1, type=F.TYPE_DOUBLE, label=F.LABEL_OPTIONAL)
    ev.field.add(name="step", number=2, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
    ev.field.add(name="file_version", number=3, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL, oneof_index=0)
    ev.field.add(name="summary", number=5, type=F.TYPE_MESSAGE, label=F.LABEL_OPTIONAL,
                 type_name=".tensorboard.Summary", oneof_index=0)
    ev.field.add(name="session_log", number=7, type=F.TYPE_MESSAGE, label=F.LABEL_OPTIONAL,
                 type_name=".tensorboard.SessionLog", oneof_index=0)
    sl = f.message_type.add(name="SessionLog")
    st = sl.enum_type.add(name="SessionStatus")
    for name, number in (("STATUS_UNSPECIFIED", 0), ("START", 1), ("STOP", 2), ("CHECKPOINT", 3)):
        st.value.add(name=name, number=number)
    sl.field.add(name="status", number=1, type=F.TYPE_ENUM, label=F.LABEL_OPTIONAL,
                 type_name=".tensorboard.SessionLog.SessionStatus")
    sm = f.message_type.add(name="Summary")
    val = sm.nested_type.add(name="Value")
    val.oneof_decl.add(name="value")
    val.field.add(name="tag", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    val.field.add(name="simple_value", number=2, type=F.TYPE_FLOAT, label=F.LABEL_OPTIONAL, oneof_index=0)
    sm.field.add(name="value", number=1, type=F.TYPE_MESSAGE, label=F.LABEL_REPEATED,
                 type_name=".tensorboard.Summary.Value")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    desc = pool.FindMessageTypeByName("tensorboard.Event")
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(desc)
    return message_factory.MessageFactory(pool).GetPrototype(desc)


def read_records(path):
    data = open(path, "rb").read()
    out, at = [], 0
    while at < len(data):
        assert at + 12 <= len(data), f"{path}: torn header at byte {at}"
        header = data[at:at + 8]
        (n,) = struct.unpack("<Q", header)
        (hcrc,) = struct.unpack("<I", data[at + 8:at + 12])
        assert hcrc == masked(crc32c(header)), f"{path}: length CRC of the record at byte {at}"
        assert at + 12 + n + 4 <= len(data), f"{path}: torn record at byte {at}"
        body = data[at + 12:at + 12 + n]
        (dcrc,) = struct.unpack("<I", data[at + 12 + n:at + 16 + n])
        assert dcrc == masked(crc32c(body)), f"{path}: data CRC of the record at byte {at}"
        out.append(body)
        at += 16 + n
    return out


def f32(x):
    return struct.unpack("<f", struct.pack("<f", float("nan") if x is None else x))[0]


def expected_scalars(metrics_path):
    """(tag, step) -> float32 value, from the README's table of tags."""
    want = {}

    def put(tag, step, value):
        assert (tag, step) not in want, f"{tag} twice at step {step}"
        want[(tag, step)] = f32(value)

    for line in open(metrics_path):
        m = json.loads(line)
        step = m["step"]
        if m["kind"] == "step":
            for key in ("loss", "lr", "samples_per_sec", "grad_norm"):
                if key in m:
                    put("train/" + key, step, m[key])
        elif m["kind"] == "epoch":
            put("epoch/train_loss", step, m["train_loss"])
            put("epoch/lr", step, m["lr"])
            put("epoch/samples_per_sec", step, m["train_samples_per_sec"])
            if "grad_norm" in m:
                put("epoch/grad_norm", step, m["grad_norm"])
            if m["test_loss"] >= 0:
                put("test/loss", step, m["test_loss"])
                put("test/accuracy", step, m["test_accuracy"])
                for k, acc in m.get("top_k_accuracy", {}).items():
                    put(f"test/top{k}_accuracy", step, acc)
        elif m["kind"] == "rank":
            for key in ("step_time_s", "comm_exposed_s", "compute_s"):
                put(f"rank{m['rank']}/{key}", step, m[key])
    return want


def events_files(d):
    return sorted(os.path.join(d, n) for n in os.listdir(d) if n.startswith("events.out.tfevents."))


def read_events(paths, Event):
    """(tag, step) -> value over all files; the START steps of each file."""
    got, starts = {}, []
    for path in paths:
        name = os.path.basename(path)
        assert re.fullmatch(r"events\.out\.tfevents\.\d{10}\..+\.\d+\.\d+", name), name
        records = read_records(path)
        assert records, f"{path} is empty"
        first = Event.FromString(records[0])
        assert first.WhichOneof("what") == "file_version" and first.file_version == "brain.Event:2", first
        file_starts = []
        for r in records[1:]:
            e = Event.FromString(r)
            assert e.wall_time > 1.7e9, e
            kind = e.WhichOneof("what")
            if kind == "session_log":
                assert e.session_log.status == 1, e  # START
                file_starts.append(e.step)
                continue
            assert kind == "summary", e
            for v in e.summary.value:
                assert v.WhichOneof("value") == "simple_value", v
                assert (v.tag, e.step) not in got, f"{v.tag} twice at step {e.step}"
                got[(v.tag, e.step)] = v.simple_value
        starts.append(file_starts)
    return got, starts


def same(a, b):
    return (math.isnan(a) and math.isnan(b)) or a == b


def check_match(metrics, paths, Event):
    want = expected_scalars(metrics)
    got, starts = read_events(paths, Event)
    missing = sorted(k for k in want if k not in got)
    extra = sorted(k for k in got if k not in want)
    wrong = sorted((k, want[k], got[k]) for k in want if k in got and not same(want[k], got[k]))
    assert not missing, f"in metrics.jsonl, not in the events: {missing[:10]}"
    assert not extra, f"in the events, not in metrics.jsonl: {extra[:10]}"
    assert not wrong, f"(tag, step), metrics value, events value: {wrong[:10]}"
    return want, starts


def write_subset(src, dst):
    """The first samples of Fashion-MNIST as plain IDX files (header patched to the new count)."""
    os.makedirs(dst)
    for split, n in (("train", TRAIN_SAMPLES), ("t10k", TEST_SAMPLES)):
        for kind, header, per in (("images-idx3", 16, 784), ("labels-idx1", 8, 1)):
            name = f"{split}-{kind}-ubyte"
            with gzip.open(os.path.join(src, name + ".gz"), "rb") as f:
                raw = f.read(header + n * per)
            with open(os.path.join(dst, name), "wb") as f:
                f.write(raw[:4] + struct.pack(">I", n) + raw[8:])


def run(argv, what):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=LAUNCH_LIMIT_S)
    assert p.returncode == 0, f"{what} exited {p.returncode}:\n{p.stdout}"
    return p.stdout


def main():
    exe, fmnist = sys.argv[1], sys.argv[2]
    assert crc32c(b"123456789") == 0xE3069283, "the test's own CRC-32C is wrong"
    Event = event_class()
    tmp = tempfile.mkdtemp(prefix="lockstep_tb_test_")
    try:
        data = os.path.join(tmp, "data")
        write_subset(fmnist, data)
        job = os.path.join(tmp, "job.textproto")
        with open(job, "w") as f:
            f.write(f'name: "tb-test"\nmodel {{ reference: "fmnist-mlp" }}\ndata {{ dir: "{data}" }}\n'
                    "optimizer { lr: 0.05 sgd { momentum: 0.9 } }\n"
                    f"seed: 5\nepochs: 2\nbatch_size: {BATCH}\n"
                    "clip_grad { max_norm: 1.0 }\n"
                    "schedule { interval: STEP warmup_steps: 5 warmup_start_factor: 0.1 }\n"
                    "eval { top_k: 3 }\n"
                    "distributed { collective_timeout_s: 60 }\n")
        runs = os.path.join(tmp, "run")
        run([exe, "launch", "-n", "2", job, "--run-dir", runs], "lockstep launch")
        metrics = os.path.join(runs, "metrics.jsonl")
        paths = events_files(runs)
        assert len(paths) == 1, f"expected one events file in {runs}: {os.listdir(runs)}"
        want, starts = check_match(metrics, paths, Event)
        tags = {t for t, _ in want}
        for t in ("train/loss", "train/lr", "train/samples_per_sec", "train/grad_norm", "epoch/train_loss",
                  "epoch/grad_norm", "test/loss", "test/accuracy", "test/top3_accuracy", "rank0/step_time_s",
                  "rank1/step_time_s", "rank0/comm_exposed_s", "rank1/comm_exposed_s"):
            assert t in tags, f"no {t} in {sorted(tags)}"
        assert {s for t, s in want if t == "train/loss"} == set(range(1, 2 * STEPS_PER_EPOCH + 1))
        assert {s for t, s in want if t == "test/loss"} == {STEPS_PER_EPOCH, 2 * STEPS_PER_EPOCH}
        assert len({want[("train/lr", s)] for s in range(1, 6)}) == 5, "the warm-up lr should change every step"
        assert starts == [[1]], starts

        # A resume (one epoch more) appends a file of its own, starting at the first new step.
        run([exe, "launch", "-n", "2", job, "--run-dir", runs, "--resume", "--set", "epochs=3"], "the resume")
        paths = events_files(runs)
        assert len(paths) == 2, f"expected a second events file after the resume: {os.listdir(runs)}"
        want, starts = check_match(metrics, paths, Event)
        assert starts == [[1], [2 * STEPS_PER_EPOCH + 1]], starts
        assert {s for t, s in want if t == "train/loss"} == set(range(1, 3 * STEPS_PER_EPOCH + 1))

        # --overwrite starts over: the old events files go with the old metrics.
        run([exe, "launch", "-n", "2", job, "--run-dir", runs, "--overwrite", "--set", "epochs=1"], "--overwrite")
        paths = events_files(runs)
        assert len(paths) == 1, f"expected only the new run's events file: {os.listdir(runs)}"
        want, starts = check_match(metrics, paths, Event)
        assert starts == [[1]], starts
        assert {s for t, s in want if t == "train/loss"} == set(range(1, STEPS_PER_EPOCH + 1))

        # `lockstep train --step-metrics`: the events file beside --metrics; tensorboard: false writes none.
        for on in (True, False):
            out = os.path.join(tmp, "train-on" if on else "train-off")
            os.makedirs(out)
            args = [exe, "train", job, "--epochs", "1", "--metrics", os.path.join(out, "m.jsonl"), "--step-metrics"]
            if not on:
                args += ["--set", "tensorboard=false"]
            run(args, "lockstep train")
            paths = events_files(out)
            if on:
                assert len(paths) == 1, os.listdir(out)
                want, starts = check_match(os.path.join(out, "m.jsonl"), paths, Event)
                assert ("test/accuracy", STEPS_PER_EPOCH) in want, sorted(want)
                assert {s for t, s in want if t == "train/grad_norm"} == set(range(1, STEPS_PER_EPOCH + 1))
                assert starts == [[1]], starts
            else:
                assert not paths, f"tensorboard: false still wrote {paths}"
        print(f"events files match metrics.jsonl ({len(want)} scalars in the last check)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
