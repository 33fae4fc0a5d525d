"""The suite: for each task, interleaved training throughput, pipeline, utilisation,
serving and memory; the results as a dict that :mod:`benchmarks.suite.report` writes out.

The parent never imports TensorFlow: every figure comes from a worker process
(:mod:`benchmarks.suite.worker`), a fresh serving process
(:mod:`benchmarks.suite.serve_probe`) or a `kerasapps run` subprocess.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks.suite.tasks import ENTRIES
from benchmarks.suite import PREFIX

ROOT = pathlib.Path(__file__).resolve().parents[2]
MEMORY_FILE = ROOT / "benchmarks" / "memory.json"

# rounds: timed A B C D rounds after warm-up; chunk_seconds: target length of one timed epoch.
MODES = {
    "tiny": dict(rounds=2, chunk_seconds=0.3, calibration_steps=1, pipeline_seconds=0.3, serve_calls=5,
                 sides=("reference", "same"), memory="none", default_tasks=("classification",)),
    # quick leaves serving out (export + a fresh process: ~10 s a task) to stay under 5 minutes
    "quick": dict(rounds=3, chunk_seconds=0.8, calibration_steps=1, pipeline_seconds=0.7, serve_calls=0,
                  sides=("reference", "same", "tuned"), memory="cached", default_tasks=None),
    "full": dict(rounds=6, chunk_seconds=1.5, calibration_steps=1, pipeline_seconds=2.0, serve_calls=100,
                 sides=("reference", "same", "tuned", "control"), memory="run", default_tasks=None),
}


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class WorkerProcess:
    """A worker subprocess and its one-line JSON protocol."""

    def __init__(self, task: str, side: str, examples: int, env: dict):
        self.task, self.side = task, side
        self.log = tempfile.NamedTemporaryFile("w+", prefix=f"bench-{task}-{side}-", suffix=".log", delete=False)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.suite.worker", task, side, str(examples)],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, env=env,
        )

    def send(self, **command) -> None:
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()

    def receive(self) -> dict:
        for line in self.process.stdout:
            if line.startswith(PREFIX):
                answer = json.loads(line[len(PREFIX):])
                if not answer.get("ok"):
                    raise RuntimeError(f"{self.task}/{self.side}: {answer.get('error')} (log: {self.log.name})")
                return answer
        self.log.flush()
        tail = pathlib.Path(self.log.name).read_text()[-2000:]
        raise RuntimeError(f"{self.task}/{self.side} worker exited ({self.process.wait()}):\n{tail}")

    def call(self, cmd: str, **args) -> dict:
        self.send(cmd=cmd, **args)
        return self.receive()

    def close(self) -> dict:
        result = {}
        try:
            if self.process.poll() is None:
                result = self.call("quit")
        except (RuntimeError, BrokenPipeError, OSError):
            pass
        finally:
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            os.unlink(self.log.name)
        return result


def _summary(values: list[float]) -> dict:
    """Median and range; ``values`` in the order measured (round by round)."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values),
            "values": list(values)}


def _paired(numerators: list[float], denominators: list[float]) -> dict:
    return _summary([a / b for a, b in zip(numerators, denominators)])


def _steps_for(rate: float, batch: int, seconds: float, multiple: int, least: int = 3) -> int:
    # At least a few steps, so that the per-epoch work (metric results, resets) is not charged to one step.
    steps = max(multiple, least, int(round(seconds * rate / batch)))
    return -(-steps // multiple) * multiple


def measure_task(name: str, mode: str, env: dict) -> dict:
    settings = MODES[mode]
    entry = ENTRIES[name]
    examples = entry.examples[mode]
    sides = settings["sides"]
    multiples = {side: (entry.tuned.get("steps_per_execution", 1) if side == "tuned" else 1) for side in sides}
    result = {"examples": examples, "tuned_settings": entry.tuned_why, "sides": {}}
    log(f"{name}: starting {', '.join(sides)} workers ({examples} training examples)")
    workers = {side: WorkerProcess(name, side, examples, env) for side in sides}
    try:
        for side, worker in workers.items():
            result["sides"][side] = worker.receive()  # built: params, flops, setup time
        # Warm-up (graph tracing, XLA compilation, buffers) and a rough rate, one side at a time.
        steps = {}
        for side, worker in workers.items():
            calibration = max(settings["calibration_steps"], multiples[side])
            answer = worker.call("calibrate", steps=calibration)
            result["sides"][side]["warmup_seconds"] = answer["warmup_seconds"]
            batch = result["sides"][side]["batch_size"]
            steps[side] = _steps_for(answer["examples_per_second"], batch, settings["chunk_seconds"], multiples[side])
            result["sides"][side]["steps_per_timed_epoch"] = steps[side]
        log(f"{name}: calibrated; timed epochs of {steps} steps")
        # Interleaved: epoch 0 of each side is one more warm-up, then rounds of A B C D.
        rates = {side: [] for side in sides}
        cpu_rates = {side: [] for side in sides}
        for worker in workers.values():
            worker.send(cmd="train", steps=steps[worker.side], epochs=settings["rounds"] + 1)
        for round_index in range(settings["rounds"] + 1):
            for side, worker in workers.items():
                worker.send(cmd="go")
                answer = worker.receive()
                if round_index:
                    rates[side].append(answer["examples_per_second"])
                    cpu_rates[side].append(answer["examples_per_cpu_second"])
        for worker in workers.values():
            worker.receive()  # fit finished
        for side in sides:
            result["sides"][side]["train"] = _summary(rates[side])
            result["sides"][side]["train_per_cpu_second"] = _summary(cpu_rates[side])
        # Each ratio pairs epochs of the same round, run back to back.
        result["ratios"] = {side: _paired(rates[side], rates["reference"]) for side in sides[1:]}
        result["cpu_ratios"] = {side: _paired(cpu_rates[side], cpu_rates["reference"]) for side in sides[1:]}
        if "control" in sides:
            result["engine_ratio"] = _paired(rates["same"], rates["control"])
            result["engine_cpu_ratio"] = _paired(cpu_rates["same"], cpu_rates["control"])
        log(f"{name}: ratios " + ", ".join(f"{s} {r['median']:.3f}" for s, r in result["ratios"].items()))
        # The input pipelines alone, and the built-in generator.
        main_side = "tuned" if "tuned" in workers else "same"  # kerasapps' best configuration measured
        result["main_side"] = main_side
        for side in ("reference", main_side):
            result["sides"][side]["pipeline"] = workers[side].call("pipeline", seconds=settings["pipeline_seconds"])
        generator = workers["same"].call("generator", count=min(examples, 2000))
        if generator:
            result["generator"] = generator
        # Keras predict beside the exported SavedModel, then the SavedModel in a fresh process.
        if settings["serve_calls"]:
            result["predict"] = workers[main_side].call("predict", calls=settings["serve_calls"])
            exported = workers[main_side].call("export")
    finally:
        for side, worker in workers.items():
            closing = worker.close()
            if closing and side in result["sides"]:
                result["sides"][side]["peak_rss_mb"] = closing.get("peak_rss_mb")
    if not settings["serve_calls"]:
        return result
    log(f"{name}: serving through serving_default in a fresh process")
    try:
        probe = subprocess.run(
            [sys.executable, "-m", "benchmarks.suite.serve_probe", exported["path"], exported["inputs"],
             exported["input_name"], str(settings["serve_calls"])],
            cwd=ROOT, capture_output=True, text=True, env=env, timeout=600,
        )
        if probe.returncode:
            raise RuntimeError(f"{name}: serve_probe failed:\n{probe.stderr[-2000:]}")
        result["serving"] = json.loads(probe.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(pathlib.Path(exported["inputs"]).parent, ignore_errors=True)
    return result


def measure_memory(name: str, env: dict, epochs: int = 1, steps: int = 20) -> dict:
    """Peak RSS of `kerasapps run NAME` with the task's defaults (data, model, evaluation, export)
    but ``epochs`` epochs of ``steps`` steps: later steps allocate nothing new."""
    work = pathlib.Path(tempfile.mkdtemp(prefix=f"bench-memory-{name}-"))
    task = ENTRIES[name].task_name if name in ENTRIES else name  # e.g. text_to_image -> text-to-image
    command = [sys.executable, "-m", "kerasapps", "run", task, "--epochs", str(epochs), "--steps-per-epoch",
               str(steps), "--workdir", str(work / "run"),
               "--export-dir", str(work / "models"), "--samples", "0"]
    log(f"{name}: peak RSS of `kerasapps run {task} --epochs {epochs} --steps-per-epoch {steps}`")
    # A wrapper process whose only child is the run: its RUSAGE_CHILDREN peak is the run's.
    wrapper = ("import resource, subprocess, sys; code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode; "
               "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    started = time.perf_counter()
    process = subprocess.run([sys.executable, "-c", wrapper, *command], cwd=ROOT, capture_output=True, text=True, env=env)
    shutil.rmtree(work, ignore_errors=True)
    try:
        code, peak_kb = (int(v) for v in process.stdout.split()[-2:])
    except ValueError:
        code, peak_kb = process.returncode or 1, 0
    if code:
        return {"error": (process.stderr.strip().splitlines() or [f"exit {code}"])[-1]}
    return {"peak_rss_mb": peak_kb / 1024, "epochs": epochs, "seconds": time.perf_counter() - started,
            "command": f"kerasapps run {task} --epochs {epochs} --steps-per-epoch {steps} --samples 0", "measured": time.strftime("%Y-%m-%d %H:%M")}


def run_suite(mode: str, tasks: list[str] | None, memory: bool | None = None, on_task=None) -> dict:
    settings = MODES[mode]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("KERASAPPS_VIRTUAL_CPUS", None)
    started = time.perf_counter()
    selected = tasks or list(settings["default_tasks"] or ENTRIES)
    results = {"mode": mode, "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "load_before": os.getloadavg(), "tasks": {}, "skipped": {}}
    for name in selected:
        entry = ENTRIES.get(name)
        if entry is None:
            results["skipped"][name] = "no benchmark entry"
            continue
        ok, why = entry.available()
        if not ok:
            results["skipped"][name] = why
            continue
        try:
            results["tasks"][name] = measure_task(name, mode, env)
        except Exception as exc:  # one task failing must not lose the others' figures
            log(f"{name}: FAILED: {exc}")
            results["skipped"][name] = f"failed: {str(exc).splitlines()[0]}"
        if on_task is not None:  # partial results on disk after every task
            on_task(dict(results, load_after=os.getloadavg(), seconds=time.perf_counter() - started,
                         partial=f"partial: written after {name}; the run goes on"))
    # Memory last: the `kerasapps run` subprocesses are the slowest part (minutes each), so
    # a measurement in benchmarks/memory.json is reused unless --memory asks for a new one.
    saved = json.loads(MEMORY_FILE.read_text()) if MEMORY_FILE.exists() else {}
    for name in results["tasks"]:
        policy = settings["memory"] if memory is None else ("run" if memory else "none")
        if policy in ("run", "cached") and name in saved and not memory:
            results["tasks"][name]["memory"] = dict(saved[name], reused=True)
        elif policy == "run":
            results["tasks"][name]["memory"] = saved[name] = measure_memory(name, env)
            MEMORY_FILE.write_text(json.dumps(saved, indent=1) + "\n")
        else:
            results["tasks"][name]["memory"] = {"not_measured": f"not measured in {mode} mode (and none saved)"}
    results["load_after"] = os.getloadavg()
    results["seconds"] = time.perf_counter() - started
    return results


def memory_only(tasks: list[str] | None) -> dict:
    """Measure (again) and save the peak RSS of `kerasapps run` for each available task."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    saved = json.loads(MEMORY_FILE.read_text()) if MEMORY_FILE.exists() else {}
    for name in tasks or list(ENTRIES):
        if ENTRIES.get(name) and ENTRIES[name].available()[0]:
            saved[name] = measure_memory(name, env)
            MEMORY_FILE.write_text(json.dumps(saved, indent=1) + "\n")
    return saved
