"""``python -m benchmarks``: the whole suite (issue 9), rewriting benchmarks/RESULTS.md.

    python -m benchmarks                 # full: every task, < 30 min on 2 cores
    python -m benchmarks --quick         # fewer, shorter rounds, < 5 min
    python -m benchmarks --tasks classification,translation --out /tmp/RESULTS.md

The older one-off scripts (``python -m benchmarks.mnist_lenet`` and friends) measure
accuracy on real data and stay separate.
"""

import argparse
import json
import pathlib
import subprocess
import sys
import time

from benchmarks.suite.measure import MODES, log, memory_only, run_suite

HERE = pathlib.Path(__file__).resolve().parent


def describe_machine_fresh() -> str:
    """benchmarks.machine's description, in a child process (this one never imports TensorFlow)."""
    out = subprocess.run([sys.executable, "-c", "from benchmarks.machine import describe_machine; print(describe_machine())"],
                         cwd=HERE.parent, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1] if out.returncode == 0 and out.stdout.strip() else "unknown machine"


def main(argv=None) -> pathlib.Path:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_true", help="shorter rounds; memory read from benchmarks/memory.json if there")
    group.add_argument("--tiny", action="store_true", help="seconds-long smoke run (the tests use it)")
    parser.add_argument("--tasks", help="comma-separated task names (default: every task with an entry)")
    parser.add_argument("--out", default=str(HERE / "RESULTS.md"), help="the Markdown file to (re)write")
    parser.add_argument("--memory", action=argparse.BooleanOptionalAction, default=None,
                        help="measure `kerasapps run` peak RSS now (minutes per task); default: full mode reuses "
                             "benchmarks/memory.json when it has the task, quick mode only reuses it")
    parser.add_argument("--memory-only", action="store_true", help="only measure and save peak RSS")
    parser.add_argument("--rewrite", action="store_true", help="only rewrite --out from the RESULTS.json beside it")
    args = parser.parse_args(argv)
    mode = "tiny" if args.tiny else "quick" if args.quick else "full"
    out = pathlib.Path(args.out)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    if args.rewrite:  # e.g. after a change to the report's wording
        from benchmarks.suite import report

        saved = json.loads(out.with_suffix(".json").read_text())
        report.write(saved, saved["machine"], out, saved.get("uptime", "not recorded"), saved.get("flags", ""))
        return out
    if args.memory_only:
        print(json.dumps(memory_only(tasks), indent=1))
        return None
    log(f"{mode} mode; tasks: {', '.join(tasks or MODES[mode]['default_tasks'] or ['all'])}")
    from benchmarks.suite import report

    flags = {"full": "", "quick": " --quick", "tiny": " --tiny"}[mode]
    if args.tasks:
        flags += f" --tasks {args.tasks}"

    def write(results):
        uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
        # benchmarks.machine's description, as a worker (which imports TensorFlow) saw it.
        machine = next((t["sides"]["same"]["machine"] for t in results["tasks"].values()), None)
        report.write(dict(results, flags=flags), machine or describe_machine_fresh(), out, uptime, flags)

    results = run_suite(mode, tasks, args.memory, on_task=write)
    write(results)
    log(f"wrote {out} in {results['seconds'] / 60:.1f} min")
    return out


if __name__ == "__main__":
    started = time.perf_counter()
    main()
