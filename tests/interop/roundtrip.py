"""Weights between lockstep and PyTorch through safetensors, both ways (issue 12), on the models'
PyTorch twins in bench/torch_models.py:
  MODEL-lockstep-to-torch: `lockstep launch -n 2` trains MODEL for one epoch on the first 2000
    training images (40 steps of 50: BatchNorm statistics and num_batches_tracked are real),
    `lockstep export` writes its checkpoint as safetensors, torch loads it with
    load_state_dict(strict=True); on the first 1000 test images torch's eval logits match lockstep's
    (computed from the checkpoint itself) within 1e-5, and the accuracy is identical.
  MODEL-torch-to-lockstep: torch trains MODEL 30 steps, the state_dict is written as safetensors
    (tests/interop/st_io.py: numpy + json), lockstep loads it as model.init_from; its eval logits
    match torch's within 1e-5 and the accuracy is identical. Then `lockstep launch -n 2` with
    init_from (lr 1e-30: the weights cannot move) exports parameters bit-identical to the file's and
    num_batches_tracked advanced by exactly its 2 steps: every rank started from the file. A resume of
    that run with init_from pointing at a file of zeros continues from the checkpoint.
MODEL is cnn (fmnist-cnn) or resnet8 (fmnist-resnet8). Exit 0 pass, 1 fail, 77 torch missing (skip).
"""
import argparse
import gzip
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402

MEAN, STD = np.float32(0.2860), np.float32(0.3530)  # lockstep's default data.mean / data.std
N_TEST = 1000
TOL = 1e-5
# Learning rates of the short trainings. The ResNet at 0.05 overshoots in 40 steps to logits near 21,
# where float32 rounding alone (torch's own error against float64 is 1.1e-5 there) fills the 1e-5
# budget; at 0.02 its logits stay near 6 and the comparison measures the weights, not the rounding.
LR = {"fmnist-cnn": 0.05, "fmnist-resnet8": 0.02}


def read_idx(path):
    """An IDX file (plain or .gz) as a uint8 array."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def write_idx(path, a):
    with open(path, "wb") as f:
        f.write(struct.pack(">I", 0x0800 | a.ndim) + struct.pack(">" + "I" * a.ndim, *a.shape) + a.tobytes())


def load_split(data_dir, split):
    def path(name):
        p = os.path.join(data_dir, name)
        return p + ".gz" if os.path.exists(p + ".gz") else p
    return read_idx(path(f"{split}-images-idx3-ubyte")), read_idx(path(f"{split}-labels-idx1-ubyte"))


def make_subset(src, dst, n_train):
    """dst: the first n_train training and N_TEST test samples of src, as plain IDX files."""
    os.makedirs(dst, exist_ok=True)
    for split, n in (("train", n_train), ("t10k", N_TEST)):
        images, labels = load_split(src, split)
        write_idx(os.path.join(dst, f"{split}-images-idx3-ubyte"), np.ascontiguousarray(images[:n]))
        write_idx(os.path.join(dst, f"{split}-labels-idx1-ubyte"), np.ascontiguousarray(labels[:n]))
    return dst


def normalise(images):
    """(N, 28, 28) bytes -> (N, 1, 28, 28) float32, as lockstep's table: (b / 255 - mean) / std in float."""
    table = (np.arange(256, dtype=np.float32) / np.float32(255) - MEAN) / STD
    return table[images][:, None, :, :]


def write_job(path, model, data, run_dir, lr, momentum, batch, init_from=""):
    with open(path, "w") as f:
        f.write(f'name: "roundtrip"\nmodel {{ reference: "{model}"'
                + (f' init_from: "{init_from}"' if init_from else "") + " }\n"
                f'data {{ dir: "{data}" }}\n'
                f"optimizer {{ lr: {lr} sgd {{ momentum: {momentum} }} }}\n"
                f'seed: 7\nepochs: 1\nbatch_size: {batch}\nthreads: 1\nrun_dir: "{run_dir}"\n')
    return path


def run(cmd, timeout=150):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
    if p.returncode != 0:
        raise SystemExit(f"FAIL: {' '.join(cmd)} exited {p.returncode}:\n{p.stdout}")
    return p.stdout


def newest_checkpoint(run_dir):
    d = os.path.join(run_dir, "checkpoints")
    return os.path.join(d, sorted(n for n in os.listdir(d) if n.startswith("ckpt-") and ".tmp" not in n)[-1])


def lockstep_logits(args, job, data, kind, weights, out):
    run([args.eval_logits, job, data, kind, weights, "--out", out])
    return st_io.read(out)[0]["logits"]


def torch_logits(torch, model, images):
    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy(normalise(images))).numpy()


def compare(name, theirs, ours, labels):
    """Logits within TOL and the same accuracy; prints the figures."""
    diff = float(np.abs(theirs.astype(np.float64) - ours).max())
    acc_t, acc_l = int((theirs.argmax(1) == labels).sum()), int((ours.argmax(1) == labels).sum())
    print(f"{name}: max |logit difference| {diff:.3g} over {len(labels)} images; "
          f"accuracy torch {acc_t}/{len(labels)}, lockstep {acc_l}/{len(labels)}")
    if not diff <= TOL:
        raise SystemExit(f"FAIL: logits differ by {diff} > {TOL}")
    if acc_t != acc_l:
        raise SystemExit(f"FAIL: accuracy differs: torch {acc_t}, lockstep {acc_l}")


def check_dtypes(dtypes):
    for k, d in dtypes.items():
        want = "I64" if k.endswith("num_batches_tracked") else "F32"
        if d != want:
            raise SystemExit(f"FAIL: {k} is {d}, expected {want}")


def lockstep_to_torch(args, torch, tm, model_name, work):
    n_train, batch = 2000, 50
    data = make_subset(args.data, os.path.join(work, "data"), n_train)
    run_dir = os.path.join(work, "run")
    job = write_job(os.path.join(work, "job.textproto"), model_name, data, run_dir, LR[model_name], 0.9, batch)
    run([args.lockstep, "launch", "-n", "2", job, "--run-dir", run_dir])
    out = os.path.join(work, "model.safetensors")
    print(run([args.lockstep, "export", run_dir, "--safetensors", out]).strip())
    tensors, dtypes, meta = st_io.read(out)
    check_dtypes(dtypes)
    counts = {k: int(v) for k, v in tensors.items() if k.endswith("num_batches_tracked")}
    if not counts or any(c != n_train // batch for c in counts.values()):
        raise SystemExit(f"FAIL: num_batches_tracked {counts}, expected {n_train // batch} each")
    model = tm.model(model_name)[0]
    model.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()}, strict=True)
    images, labels = load_split(data, "t10k")
    theirs = torch_logits(torch, model, images)
    ckpt = newest_checkpoint(run_dir)
    direct = os.path.join(work, "direct.safetensors")
    run([args.lockstep, "export", ckpt, "--safetensors", direct])
    with open(out, "rb") as a, open(direct, "rb") as b:
        if a.read() != b.read():
            raise SystemExit(f"FAIL: exporting {ckpt} gives another file than exporting its run directory")
    ours = lockstep_logits(args, job, data, "--checkpoint", ckpt, os.path.join(work, "ckpt_logits.safetensors"))
    reread = lockstep_logits(args, job, data, "--safetensors", out, os.path.join(work, "st_logits.safetensors"))
    if not np.array_equal(ours, reread):
        raise SystemExit("FAIL: lockstep's logits from the exported file differ from the checkpoint's")
    compare(f"{model_name} trained by lockstep ({ckpt}), evaluated by torch", theirs, ours, labels)


def torch_to_lockstep(args, torch, tm, model_name, work):
    steps, batch = 30, 64
    torch.manual_seed(3)
    model = tm.model(model_name)[0]
    images, labels = load_split(args.data, "train")
    x = torch.from_numpy(normalise(images[:steps * batch]))
    y = torch.from_numpy(labels[:steps * batch].astype(np.int64))
    opt = torch.optim.SGD(model.parameters(), lr=LR[model_name], momentum=0.9)
    model.train()
    for s in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x[s * batch:(s + 1) * batch]), y[s * batch:(s + 1) * batch])
        loss.backward()
        opt.step()
    weights = os.path.join(work, "torch.safetensors")
    st_io.write(weights, {k: v.numpy() for k, v in model.state_dict().items()}, {"format": "pt"})
    data = make_subset(args.data, os.path.join(work, "data"), 100)
    test_images, test_labels = load_split(data, "t10k")
    theirs = torch_logits(torch, model, test_images)
    job = write_job(os.path.join(work, "eval.textproto"), model_name, data, os.path.join(work, "unused"), 0.05, 0.9, 50)
    ours = lockstep_logits(args, job, data, "--safetensors", weights, os.path.join(work, "logits.safetensors"))
    compare(f"{model_name} trained by torch ({steps} steps), evaluated by lockstep", theirs, ours, test_labels)

    # Every rank of a launched job starts from init_from: 2 steps at lr 1e-30 leave the parameters
    # bit-identical, and num_batches_tracked counts on from the file's.
    run_dir = os.path.join(work, "run")
    job = write_job(os.path.join(work, "init.textproto"), model_name, data, run_dir, 1e-30, 0, 50, init_from=weights)
    run([args.lockstep, "launch", "-n", "2", job, "--run-dir", run_dir])
    out = os.path.join(work, "after.safetensors")
    run([args.lockstep, "export", run_dir, "--safetensors", out])
    before, after = st_io.read(weights)[0], st_io.read(out)[0]
    params = dict(model.named_parameters())
    for k, v in before.items():
        if k in params and not np.array_equal(v, after[k]):
            raise SystemExit(f"FAIL: parameter {k} after a launch from init_from differs from the file's")
        if k.endswith("num_batches_tracked") and int(after[k]) != int(v) + 2:
            raise SystemExit(f"FAIL: {k}: {int(after[k])} after 2 steps from {int(v)}")
    print(f"launch -n 2 from init_from: {len(params)} parameters as in the file, num_batches_tracked {steps} -> {steps + 2}")

    # A resume takes the checkpoint's weights, not init_from's (here another file, of zeros).
    zeros = os.path.join(work, "zeros.safetensors")
    st_io.write(zeros, {k: np.zeros_like(v) for k, v in before.items()})
    job = write_job(os.path.join(work, "resume.textproto"), model_name, data, run_dir, 1e-30, 0, 50, init_from=zeros)
    run([args.lockstep, "launch", "-n", "2", job, "--run-dir", run_dir, "--resume", "--epochs", "2"])
    run([args.lockstep, "export", run_dir, "--safetensors", out])
    resumed = st_io.read(out)[0]
    for k, v in before.items():
        if k in params and not np.array_equal(v, resumed[k]):
            raise SystemExit(f"FAIL: parameter {k} after a resume is not the checkpoint's (init_from applied?)")
        if k.endswith("num_batches_tracked") and int(resumed[k]) != int(v) + 4:
            raise SystemExit(f"FAIL: {k}: {int(resumed[k])} after 2 + 2 steps from {int(v)}")
    print("resume with another init_from: the checkpoint's weights, num_batches_tracked counting on")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("case", choices=[f"{m}-{d}" for m in ("cnn", "resnet8") for d in ("lockstep-to-torch", "torch-to-lockstep")])
    p.add_argument("--lockstep", required=True)
    p.add_argument("--eval-logits", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--source", required=True)
    args = p.parse_args()
    try:
        import torch
    except ImportError:
        print("SKIP: torch is not installed for this python (python3-torch)")
        sys.exit(77)
    torch.set_num_threads(1)
    sys.path.insert(0, os.path.join(args.source, "bench"))
    import torch_models as tm
    model_name = {"cnn": "fmnist-cnn", "resnet8": "fmnist-resnet8"}[args.case.split("-")[0]]
    work = tempfile.mkdtemp(prefix="lockstep-roundtrip-")
    try:
        if args.case.endswith("lockstep-to-torch"):
            lockstep_to_torch(args, torch, tm, model_name, work)
        else:
            torch_to_lockstep(args, torch, tm, model_name, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("PASS")


if __name__ == "__main__":
    main()
