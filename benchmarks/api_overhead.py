"""The Python API against the command line: the same run, timed both ways in one sitting.

`kerasapps run TASK ...` and `python -c "import kerasapps; kerasapps.run('TASK', ...)"` are timed
as fresh processes, alternately (CLI, API, CLI, API, ...), so that load on the machine falls on
both alike; each pair trains, evaluates and exports the same tiny run into its own folder. The
command line is a thin layer over the API, so the ratio should be 1 within noise. The section
"Python API against the command line" of RESULTS.md is replaced.

Example::

    python -m benchmarks.api_overhead --pairs 5
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks.results_sections import replace_section

TASK = "classification"
# One small run: a few seconds of training, then evaluation and export; the fixed costs
# (interpreter, TensorFlow import, plugin discovery) are what the two could differ in.
SETTINGS = {"epochs": 1, "batch_size": 32, "train_examples": 512, "eval_examples": 128, "image_size": 32,
            "samples": 0, "seed": 0}


def cli_command(workdir, export_dir) -> list[str]:
    options = ["--epochs", "1", "--batch-size", "32", "--samples", "0", "--seed", "0"]
    fields = [f"{k}={SETTINGS[k]}" for k in ("train_examples", "eval_examples", "image_size")]
    sets = [arg for field in fields for arg in ("--set", field)]
    return [sys.executable, "-m", "kerasapps", "run", TASK, *options, *sets, "--workdir", str(workdir),
            "--export-dir", str(export_dir)]


def api_command(workdir, export_dir) -> list[str]:
    call = (f"import kerasapps; kerasapps.run({TASK!r}, workdir={str(workdir)!r}, export_dir={str(export_dir)!r}, "
            + ", ".join(f"{k}={v!r}" for k, v in SETTINGS.items()) + ")")
    return [sys.executable, "-c", call]


def timed(command) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    return time.perf_counter() - started


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.api_overhead", description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5, help="CLI/API pairs timed (default 5)")
    parser.add_argument("--out", default="benchmarks/RESULTS.md", help="results file whose section is replaced")
    args = parser.parse_args(argv)
    from benchmarks.machine import describe_machine

    times = {"command line": [], "Python API": []}
    with tempfile.TemporaryDirectory() as scratch:
        root = pathlib.Path(scratch)
        for pair in range(args.pairs):
            for name, make in (("command line", cli_command), ("Python API", api_command)):
                folder = root / f"{name.split()[0].lower()}-{pair}"
                times[name].append(timed(make(folder / "run", folder / "saved_models")))
                print(f"pair {pair + 1}/{args.pairs}: {name} {times[name][-1]:.2f} s", flush=True)
    cli_median, api_median = (statistics.median(times[name]) for name in times)
    section = "\n".join([
        "## Python API against the command line",
        "",
        f"`python -m benchmarks.api_overhead --pairs {args.pairs}`: one tiny `{TASK}` run (train 1 epoch on "
        f"{SETTINGS['train_examples']} shapes scenes at {SETTINGS['image_size']} px, evaluate, export), each "
        "way as a fresh process, alternately. Wall seconds per run, whole process:",
        "",
        "| way | median | min | max |",
        "| --- | --- | --- | --- |",
        *(f"| {name} | {statistics.median(t):.2f} | {min(t):.2f} | {max(t):.2f} |" for name, t in times.items()),
        "",
        f"**API / command line: {api_median / cli_median:.3f}** (median against median). "
        f"**Machine:** {describe_machine()}.",
    ])
    replace_section(pathlib.Path(args.out), "api_overhead", section)
    print(section)


if __name__ == "__main__":
    main()
