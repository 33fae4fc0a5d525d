"""``python -m benchmarks.serve_load``: `kerasapps serve` under concurrent load against serving_default in-process.

N clients (default 32) each send one-image predict requests back to back for 60 s per model to
a `kerasapps serve` on 127.0.0.1 with server-side batching on; the same image goes through
serving_default in a fresh process, batch 1 and batch 32, as the baseline. p50/p99 latency and
throughput go into benchmarks/RESULTS.md's "Serving under load" section (replaced each run;
`python -m benchmarks` keeps it).

    python -m benchmarks.serve_load                          # exports captioning and classification first
    python -m benchmarks.serve_load --root saved_models --seconds 20 --clients 8

The exports are the tasks' default models after a few training steps: the weights do not
change the cost of a call, the architecture does.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np

from benchmarks.results_sections import replace_section

HERE = pathlib.Path(__file__).resolve().parent
TASKS = ("captioning", "classification")

# Runs in a fresh process that never imports Keras: the serving graph alone, batch 1 then batch 32.
IN_PROCESS = """
import json, sys, time
import numpy as np, tensorflow as tf
path, image, seconds = sys.argv[1], open(sys.argv[2], "rb").read(), float(sys.argv[3])
serve = tf.saved_model.load(path).signatures["serving_default"]
result = {}
for batch in (1, 32):
    images = tf.constant([image] * batch)
    serve(image_bytes=images)  # trace and warm up
    latencies, start = [], time.perf_counter()
    while time.perf_counter() - start < seconds:
        t = time.perf_counter()
        serve(image_bytes=images)
        latencies.append(time.perf_counter() - t)
    result[batch] = {"calls": len(latencies), "seconds": time.perf_counter() - start,
                     "p50_ms": 1000 * float(np.percentile(latencies, 50)), "p99_ms": 1000 * float(np.percentile(latencies, 99))}
print(json.dumps(result))
"""


def _env():
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")


def export_models(work: pathlib.Path, steps: int, tasks=TASKS) -> pathlib.Path:
    """Train each task's default model for a few steps and export it under ``work/saved_models``."""
    for task in tasks:
        workdir = work / "runs" / task
        for command in (["train", task, "--epochs", "1", "--steps-per-epoch", str(steps), "--set", "train_examples=256",
                         "--set", "eval_examples=64", "--workdir", str(workdir)],
                        ["export", task, "--workdir", str(workdir), "--export-dir", str(work / "saved_models")]):
            subprocess.run([sys.executable, "-m", "kerasapps", *command], check=True, env=_env(), capture_output=True)
    return work / "saved_models"


def sample_image(model_dir: pathlib.Path) -> bytes:
    """A shapes scene at the model's own image size, as PNG."""
    meta = json.loads((model_dir / "assets" / "kerasapps.json").read_text())
    size = int(meta.get("config", {}).get("image_size", 64))
    import tensorflow as tf

    image = np.full((size, size, 3), 240, np.uint8)
    image[size // 4:3 * size // 4, size // 4:3 * size // 4] = (200, 30, 30)  # a red square
    return tf.io.encode_png(image).numpy()


def newest(root: pathlib.Path, task: str) -> pathlib.Path:
    return max((p for p in (root / task).iterdir() if p.name.isdigit()), key=lambda p: int(p.name))


async def _load(url: str, body: bytes, clients: int, seconds: float) -> dict:
    import httpx

    latencies, errors, rows_in_call = [], 0, []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        stop = time.perf_counter() + seconds

        async def one_client():
            nonlocal errors
            while time.perf_counter() < stop:
                start = time.perf_counter()
                response = await client.post(url, content=body, headers={"Content-Type": "application/json"})
                if response.status_code == 200:
                    latencies.append(time.perf_counter() - start)
                    rows_in_call.append(int(response.headers.get("X-Batch-Rows", 1)))
                else:
                    errors += 1

        first = await client.post(url, content=body)  # the first call traces the graph: not measured
        if first.status_code != 200:
            raise RuntimeError(f"{url}: {first.status_code} {first.text[:300]}")
        start = time.perf_counter()
        await asyncio.gather(*(one_client() for _ in range(clients)))
        elapsed = time.perf_counter() - start
    return {"requests": len(latencies), "errors": errors, "seconds": elapsed, "mean_batch": float(np.mean(rows_in_call)),
            "p50_ms": 1000 * float(np.percentile(latencies, 50)), "p99_ms": 1000 * float(np.percentile(latencies, 99))}


def start_server(root, window_ms, max_batch):
    process = subprocess.Popen([sys.executable, "-m", "kerasapps", "serve", str(root), "--port", "0",
                                "--batch-window-ms", str(window_ms), "--max-batch-size", str(max_batch)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env())
    for line in process.stdout:
        if line.startswith("serving "):
            return process, line.rsplit(" at ", 1)[1].strip().rstrip("/")
    raise RuntimeError("kerasapps serve did not start")


def _load_average() -> float:
    return os.getloadavg()[0]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve_load", description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="saved_models folder with captioning/ and classification/ (default: export now)")
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated image tasks to load")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60, help="load per model")
    parser.add_argument("--baseline-seconds", type=float, default=20, help="in-process timing per batch size")
    parser.add_argument("--batch-window-ms", type=float, default=5.0)
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5, help="training steps before export (without --root)")
    parser.add_argument("--out", default=str(HERE / "RESULTS.md"))
    args = parser.parse_args(argv)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    from benchmarks.machine import describe_machine

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load_before = _load_average()
    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        root = pathlib.Path(args.root) if args.root else export_models(work, args.steps, tasks)
        rows = {}
        for task in tasks:
            model_dir = newest(root, task)
            image = sample_image(model_dir)
            (work / f"{task}.png").write_bytes(image)
            print(f"{task}: in-process serving_default, {args.baseline_seconds:.0f} s per batch size", flush=True)
            out = subprocess.run([sys.executable, "-c", IN_PROCESS, str(model_dir), str(work / f"{task}.png"),
                                  str(args.baseline_seconds)], capture_output=True, text=True, env=_env(), check=True)
            rows[task] = {"in_process": json.loads(out.stdout.strip().splitlines()[-1]), "version": model_dir.name}
        server, url = start_server(root, args.batch_window_ms, args.max_batch_size)
        try:
            for task in tasks:
                print(f"{task}: {args.clients} clients for {args.seconds:.0f} s", flush=True)
                body = json.dumps({"instances": [{"b64": base64.b64encode((work / f"{task}.png").read_bytes()).decode()}]})
                rows[task]["served"] = asyncio.run(_load(f"{url}/v1/models/{task}:predict", body.encode(),
                                                         args.clients, args.seconds))
        finally:
            server.terminate()
            server.wait(30)
    load_after = _load_average()
    section = report(rows, args, describe_machine(), started, load_before, load_after)
    replace_section(pathlib.Path(args.out), "serve_load", section)
    print(section)


def report(rows, args, machine, started, load_before, load_after) -> str:
    cores = os.cpu_count() or 1
    shared = max(load_before, load_after) > cores
    lines = [
        "## Serving under load (`kerasapps serve`)",
        "",
        f"Written by `python -m benchmarks.serve_load` on {started}: {args.clients} concurrent clients, each sending "
        f"one-image `:predict` requests (row format, b64 PNG) back to back for {args.seconds:.0f} s per model to "
        f"`kerasapps serve` on 127.0.0.1 (`--batch-window-ms {args.batch_window_ms:g} --max-batch-size "
        f"{args.max_batch_size}`); the clients (httpx, asyncio, one process) run on the same cores as the server. "
        f"Baseline: `serving_default` called in a fresh process, back to back, {args.baseline_seconds:.0f} s per "
        "batch size. Models: each task's default architecture after a few training steps.",
        "",
        f"**Machine:** {machine}. **Load:** load average {load_before:.2f} before, {load_after:.2f} after"
        + (f" (over the {cores} cores: other jobs shared the CPU during the run, so absolute figures are low "
           "and noisy)." if shared else "."),
        "",
        "| model | how | p50 latency ms | p99 latency ms | images/s | rows per signature call |",
        "|---|---|---|---|---|---|",
    ]
    for task, row in rows.items():
        served, base = row["served"], row["in_process"]
        lines.append(f"| {task} | served, {args.clients} clients, batched | {served['p50_ms']:.1f} | {served['p99_ms']:.1f} "
                     f"| **{served['requests'] / served['seconds']:.1f}**"
                     + (f" ({served['errors']} errors)" if served["errors"] else "")
                     + f" | {served['mean_batch']:.1f} (mean over requests) |")
        for batch in ("1", "32"):
            b = base[batch]
            lines.append(f"| {task} | in process, batch {batch} | {b['p50_ms']:.1f} | {b['p99_ms']:.1f} "
                         f"| {int(batch) * b['calls'] / b['seconds']:.1f} | {batch} |")
    lines += ["", "Latency for in-process rows is per call (a batch-32 call returns 32 images); served latency is "
              "per request, queueing and batching window included."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
