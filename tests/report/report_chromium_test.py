#!/usr/bin/env python3
"""`lockstep report` on a real run, opened in headless Chromium.

A 2-rank `lockstep launch` of fmnist-mlp on a subset of Fashion-MNIST (3 epochs, eval and
checkpoint every epoch, gradient clipping on) makes a run directory; `lockstep report` writes its
page. Chromium loads the page through the DevTools protocol (--remote-debugging-pipe) and the test
checks, independently of the report's code:
  - no console message of level error or warning, no exception, no log entry of level error;
  - no request other than the page itself (and the HTML names no http(s) URL, src, href or url());
  - a screenshot in which every chart's plot area holds pixels of each of its series' colours;
  - the page's final figures are the last epoch line of metrics.jsonl, its world size 2, and it
    lists every checkpoint directory;
  - a report made while the job trains says it runs and has charts;
  - a metrics file cut in the middle of a line still gives a page, with a note; a directory that
    is not a run directory is refused in one line naming it (exit 2), and so is -o onto the run's
    own metrics file (left untouched).
Usage: report_chromium_test.py LOCKSTEP_BINARY DATA_DIR [--screenshot PNG] [--epochs N] [--keep DIR]
Exit 0 pass, 1 fail, 77 skipped (no chromium).
"""
import argparse
import base64
import fcntl
import gzip
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

TRAIN, TEST = 4096, 1000  # samples of the subset: seconds per epoch on 2 ranks


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def subset_idx(src, dst, n):
    """The first n records of an IDX file (gzip'd), header counts rewritten."""
    with gzip.open(src, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    per = 1
    for d in dims[1:]:
        per *= d
    head = bytearray(data[:4 + 4 * ndim])
    head[4:8] = n.to_bytes(4, "big")
    with open(dst, "wb") as f:
        f.write(bytes(head) + data[4 + 4 * ndim:4 + 4 * ndim + n * per])


def high_fd(fd):
    high = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
    os.close(fd)
    return high


class Chromium:
    """Headless Chromium driven over --remote-debugging-pipe (NUL-separated JSON messages)."""

    def __init__(self, profile):
        exe = shutil.which("chromium")
        # The child's ends above fd 9, so that moving them to 3 and 4 cannot close one of them.
        to_r, self.to_w = os.pipe()
        self.from_r, from_w = os.pipe()
        to_r, from_w = high_fd(to_r), high_fd(from_w)
        os.makedirs(profile, exist_ok=True)
        cmd = ("exec {exe} --headless --no-sandbox --disable-gpu --remote-debugging-pipe --no-first-run "
               "--no-default-browser-check --disable-extensions --disable-background-networking "
               "--disable-component-update --disable-sync --user-data-dir={profile} about:blank "
               "3<&{r} 4>&{w} {r}<&- {w}>&-").format(exe=exe, profile=profile, r=to_r, w=from_w)
        # Its caches and settings stay in the profile directory, whatever HOME is (CI may have none).
        env = dict(os.environ, HOME=profile, XDG_CONFIG_HOME=profile, XDG_CACHE_HOME=profile)
        self.proc = subprocess.Popen(["bash", "-c", cmd], pass_fds=(to_r, from_w), env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_r)
        os.close(from_w)
        self.next_id = 0
        self.replies = {}
        self.events = []
        self.cv = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        buf = b""
        while True:
            chunk = os.read(self.from_r, 1 << 16)
            if not chunk:
                return
            buf += chunk
            while b"\0" in buf:
                msg, buf = buf.split(b"\0", 1)
                m = json.loads(msg)
                with self.cv:
                    if "id" in m:
                        self.replies[m["id"]] = m
                    else:
                        self.events.append(m)
                    self.cv.notify_all()

    def call(self, method, params=None, session=None, timeout=30):
        self.next_id += 1
        i = self.next_id
        msg = {"id": i, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.to_w, json.dumps(msg).encode() + b"\0")
        with self.cv:
            if not self.cv.wait_for(lambda: i in self.replies, timeout):
                fail("chromium did not answer " + method)
            r = self.replies.pop(i)
        if "error" in r:
            fail("chromium: %s: %s" % (method, r["error"]))
        return r["result"]

    def wait_event(self, method, timeout=30):
        with self.cv:
            if not self.cv.wait_for(lambda: any(e["method"] == method for e in self.events), timeout):
                fail("chromium: no " + method + " event")

    def close(self):
        try:
            self.call("Browser.close", timeout=5)
        except SystemExit:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def open_page(page, width, profile):
    """Loads page; returns (events, png bytes, charts: [(plot box, [series colours])])."""
    b = Chromium(profile)
    try:
        target = b.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        s = b.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network", "DOM"):
            b.call(domain + ".enable", session=s)
        b.call("Emulation.setDeviceMetricsOverride",
               {"width": width, "height": 1000, "deviceScaleFactor": 1, "mobile": False}, session=s)
        b.call("Page.navigate", {"url": "file://" + page}, session=s)
        b.wait_event("Page.loadEventFired")
        time.sleep(0.3)  # late console messages
        size = b.call("Page.getLayoutMetrics", session=s)["cssContentSize"]
        height = int(size["height"]) + 1
        b.call("Emulation.setDeviceMetricsOverride",
               {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=s)
        root = b.call("DOM.getDocument", {"depth": 0}, session=s)["root"]["nodeId"]
        charts = []
        for svg in b.call("DOM.querySelectorAll", {"nodeId": root, "selector": "svg.chart"}, session=s)["nodeIds"]:
            plot = b.call("DOM.querySelector", {"nodeId": svg, "selector": "rect.plot"}, session=s)["nodeId"]
            q = b.call("DOM.getBoxModel", {"nodeId": plot}, session=s)["model"]["border"]
            box = (q[0], q[1], q[4], q[5])  # left, top, right, bottom in CSS px (scale 1)
            colours = set()
            for n in b.call("DOM.querySelectorAll", {"nodeId": svg, "selector": ".series"}, session=s)["nodeIds"]:
                a = b.call("DOM.getAttributes", {"nodeId": n}, session=s)["attributes"]
                a = dict(zip(a[::2], a[1::2]))
                colours.add(a.get("stroke") if a.get("fill") == "none" else a.get("fill"))
            title = b.call("DOM.querySelector", {"nodeId": svg, "selector": "title"}, session=s)["nodeId"]
            name = b.call("DOM.getOuterHTML", {"nodeId": title}, session=s)["outerHTML"]
            charts.append((re.sub("<[^>]+>", "", name), box, sorted(colours)))
        png = base64.b64decode(b.call("Page.captureScreenshot", {"format": "png"}, session=s)["data"])
        with b.cv:
            events = list(b.events)
        return events, png, charts
    finally:
        b.close()


def check_no_errors_no_requests(events, page):
    for e in events:
        m, p = e["method"], e.get("params", {})
        if m == "Runtime.exceptionThrown":
            fail("exception in the page: %s" % json.dumps(p)[:300])
        if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "warning", "assert"):
            fail("console %s: %s" % (p["type"], json.dumps(p.get("args"))[:300]))
        if m == "Log.entryAdded" and p["entry"].get("level") in ("error", "warning"):
            fail("console log %s: %s (%s)" % (p["entry"]["level"], p["entry"].get("text"), p["entry"].get("url")))
        if m == "Network.requestWillBeSent" and p["request"]["url"] != "file://" + page:
            fail("the page requested " + p["request"]["url"])
    if not any(e["method"] == "Network.requestWillBeSent" for e in events):
        fail("no request seen at all: the Network domain did not report the page's own load")


def check_charts(png, charts, expected_titles):
    from PIL import Image
    img = Image.open(io.BytesIO(png)).convert("RGB")
    px = img.load()
    titles = [c[0] for c in charts]
    for t in expected_titles:
        if t not in titles:
            fail("no chart %r (charts: %s)" % (t, titles))
    for title, (l, t, r, btm), colours in charts:
        if not colours:
            fail("chart %r has no series" % title)
        want = [tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)) for c in colours]
        counts = [0] * len(want)
        for y in range(int(t) + 2, int(btm) - 1):
            for x in range(int(l) + 2, int(r) - 1):
                p = px[x, y]
                for k, w in enumerate(want):
                    if abs(p[0] - w[0]) <= 12 and abs(p[1] - w[1]) <= 12 and abs(p[2] - w[2]) <= 12:
                        counts[k] += 1
        for c, n in zip(colours, counts):
            if n < 8:
                fail("chart %r: %d pixels of series colour %s in its plot area %s" % (title, n, c, (l, t, r, btm)))
        print("chart %-40s plot %4dx%-4d series pixels %s" % (title, r - l, btm - t, dict(zip(colours, counts))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("lockstep")
    ap.add_argument("data")
    ap.add_argument("--screenshot", help="also save the screenshot here")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--train", type=int, default=TRAIN)
    ap.add_argument("--keep", help="work in this directory and keep it")
    a = ap.parse_args()
    if not shutil.which("chromium"):
        print("SKIP: chromium is not installed (Debian package chromium)")
        sys.exit(77)
    work = a.keep or tempfile.mkdtemp(prefix="lockstep_report_")
    os.makedirs(work, exist_ok=True)
    try:
        run(a, work)
    finally:
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    print("PASS")


def run(a, work):
    data = os.path.join(work, "data")
    os.makedirs(data, exist_ok=True)
    for kind, n in (("train", a.train), ("t10k", TEST)):
        for part in ("images-idx3", "labels-idx1"):
            subset_idx(os.path.join(a.data, "%s-%s-ubyte.gz" % (kind, part)),
                       os.path.join(data, "%s-%s-ubyte" % (kind, part)), n)
    job = os.path.join(work, "report-test.textproto")
    with open(job, "w") as f:
        f.write('name: "report-test"\nmodel { reference: "fmnist-mlp" }\ndata { dir: "%s" }\n'
                'optimizer { lr: 0.05 sgd { momentum: 0.9 } }\nschedule { cosine { t_max: %d } }\n'
                'clip_grad { max_norm: 5 }\nseed: 3\nepochs: %d\nbatch_size: 64\n'
                'phases { eval_every: 1 checkpoint_every: 1 keep_checkpoints: 2 }\n'
                'distributed { collective_timeout_s: 30 }\n' % (data, a.epochs, a.epochs))
    rundir = os.path.join(work, "run")
    shutil.rmtree(rundir, ignore_errors=True)
    t0 = time.time()
    launch = subprocess.Popen([a.lockstep, "launch", "-n", "2", job, "--run-dir", rundir],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # While it trains (its first step logged): the page says it runs, and already has charts.
    metrics = os.path.join(rundir, "metrics.jsonl")
    while launch.poll() is None and not (os.path.exists(metrics) and '"kind":"step"' in open(metrics).read()):
        time.sleep(0.01)
    live = os.path.join(work, "live.html")
    p = subprocess.run([a.lockstep, "report", rundir, "-o", live], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=30)
    live_ok = launch.poll() is None
    out, _ = launch.communicate(timeout=80)
    if launch.returncode != 0:
        fail("lockstep launch exited %d:\n%s" % (launch.returncode, out[-3000:]))
    print("launch: %.1f s" % (time.time() - t0))
    if p.returncode != 0:
        fail("lockstep report on the running job exited %d: %s" % (p.returncode, p.stderr))
    live_html = open(live, encoding="utf-8").read()
    if not live_ok:
        print("note: the launch ended before the report read it; the running-job check was not made")
    if live_ok and ('id="status">Running (job report-test, pid %d' % launch.pid not in live_html
                    or '<svg class="chart"' not in live_html):
        fail("the page of the running job does not say it runs, or has no chart:\n" + live_html[:1500])

    p = subprocess.run([a.lockstep, "report", rundir], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=30)
    if p.returncode != 0:
        fail("lockstep report exited %d: %s" % (p.returncode, p.stderr))
    page = os.path.join(rundir, "report.html")
    html = open(page, encoding="utf-8").read()
    for bad in (r"https?://", r"\bsrc\s*=", r"\bhref\s*=", r"url\(", r"@import", r"<script", r"<link", r"<iframe"):
        if re.search(bad, html, re.I):
            fail("the page holds %r: it must need no network and no script" % bad)

    # The figures against metrics.jsonl, read here with json alone.
    epochs = {}
    for line in open(os.path.join(rundir, "metrics.jsonl")):
        r = json.loads(line)
        if r["kind"] == "epoch":
            epochs[r["epoch"]] = r
    last = epochs[max(epochs)]
    if max(epochs) != a.epochs:
        fail("metrics.jsonl ends at epoch %d, not %d" % (max(epochs), a.epochs))

    def shown(id_):
        m = re.search(r'id="%s">([^<]+)<' % id_, html)
        if not m:
            fail("the page has no %s" % id_)
        return float(m.group(1).rstrip("%"))
    for id_, want in (("final-train-loss", last["train_loss"]), ("final-test-loss", last["test_loss"]),
                      ("final-test-accuracy", 100 * last["test_accuracy"]),
                      ("final-top-5", 100 * last["top_k_accuracy"]["5"])):
        got = shown(id_)
        if abs(got - want) > 1e-4 * max(1, abs(want)):
            fail("%s: the page shows %s, metrics.jsonl has %s" % (id_, got, want))
    if not re.search(r"<th>World size</th><td>2 \(", html):
        fail("the page does not give world size 2")
    for d in os.listdir(os.path.join(rundir, "checkpoints")):
        if not re.search(re.escape(d) + r"</td><td class=\"num\">\d+</td><td>end of epoch \d+</td>"
                         r"<td class=\"num\">2</td><td>valid</td>", html):
            fail("checkpoint %s is not listed as valid" % d)
    if "report-test" not in html or "fmnist-mlp" not in html:
        fail("the page does not state the job")

    events, png, charts = open_page(page, 1200, os.path.join(work, "profile"))
    check_no_errors_no_requests(events, page)
    check_charts(png, charts, ["Loss", "Test accuracy", "Learning rate", "Training throughput",
                               "Step time per rank (epoch median)", "Gradient norm before clipping"])
    if a.screenshot:
        with open(a.screenshot, "wb") as f:
            f.write(png)

    # A metrics file cut mid-line (a run being written, or killed): still a page, with a note.
    cut = os.path.join(work, "cut")
    shutil.rmtree(cut, ignore_errors=True)
    shutil.copytree(rundir, cut, ignore=shutil.ignore_patterns("checkpoints", "report.html"))
    text = open(os.path.join(cut, "metrics.jsonl")).read()
    open(os.path.join(cut, "metrics.jsonl"), "w").write(text[:len(text) - 40])
    p = subprocess.run([a.lockstep, "report", cut, "-o", os.path.join(work, "cut.html")],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
    cut_html = open(os.path.join(work, "cut.html"), encoding="utf-8").read() if p.returncode == 0 else ""
    if p.returncode != 0 or "is incomplete" not in cut_html or "No checkpoints yet" not in cut_html:
        fail("report on a cut metrics file: exit %d %s" % (p.returncode, p.stderr))
    events, png, charts = open_page(os.path.join(work, "cut.html"), 1200, os.path.join(work, "profile2"))
    check_no_errors_no_requests(events, os.path.join(work, "cut.html"))
    check_charts(png, charts, ["Loss", "Test accuracy"])

    # -o onto the run's own metrics: refused, the metrics untouched.
    before = open(os.path.join(rundir, "metrics.jsonl"), "rb").read()
    p = subprocess.run([a.lockstep, "report", rundir, "-o", os.path.join(rundir, "metrics.jsonl")],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=30)
    if p.returncode != 2 or "metrics.jsonl" not in p.stderr or open(os.path.join(rundir, "metrics.jsonl"), "rb").read() != before:
        fail("report -o RUN_DIR/metrics.jsonl: exit %d %s" % (p.returncode, p.stderr))

    # The launcher keeps a job's metrics off the files the run directory holds for the report.
    for own in ("report.html", "job.textproto"):
        bad_job = os.path.join(work, "own.textproto")
        with open(bad_job, "w") as f:
            f.write(open(job).read() + 'metrics_file: "%s"\n' % own)
        p = subprocess.run([a.lockstep, "launch", "-n", "2", bad_job, "--run-dir", os.path.join(work, "own")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=30)
        if p.returncode != 2 or 'metrics_file: "%s"' % own not in p.stdout:
            fail("a job with metrics_file %s: exit %d %s" % (own, p.returncode, p.stdout))

    # Not a run directory: one line naming it, exit 2, no page.
    p = subprocess.run([a.lockstep, "report", data], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=30)
    lines = p.stderr.strip().splitlines()
    if p.returncode != 2 or len(lines) != 1 or data not in lines[0] or os.path.exists(os.path.join(data, "report.html")):
        fail("report on a data directory: exit %d, stderr %r" % (p.returncode, p.stderr))


if __name__ == "__main__":
    main()
