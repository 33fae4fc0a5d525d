"""What every benchmark script needs: the machine's name, a recipe's settings, and a timed CLI run's metrics.

Example::

    read_recipe("kerasapps_classification", "mnist")["epochs"]    # 12: what `--recipe mnist` runs
    metrics, wall = run_and_read([sys.executable, "-m", "kerasapps", "run", "classification",
                                  "--workdir", "/tmp/w/run"], "/tmp/w/run")
    print(describe_machine(), metrics["metrics"], wall)
"""

import importlib.resources
import json
import os
import pathlib
import platform
import subprocess
import time


def describe_machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import tensorflow as tf

    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    return (f"{cpu}, {os.cpu_count()} cores, TensorFlow {tf.__version__}, "
            f"GPU: {', '.join(gpus) if gpus else 'none'}")


def read_recipe(package: str, name: str) -> dict:
    """The settings of recipe ``name`` that plugin package ``package`` ships (what ``--recipe NAME`` reads)."""
    from kerasapps.config import load_config_file
    from kerasapps.recipes import RECIPE_FOLDER

    with importlib.resources.as_file(importlib.resources.files(package) / RECIPE_FOLDER / f"{name}.yaml") as path:
        return load_config_file(path)


def run_and_read(command, workdir, **run_kwargs) -> tuple[dict, float]:
    """Run a ``kerasapps run ... --workdir WORKDIR`` command; return its metrics.json and wall seconds."""
    start = time.perf_counter()
    subprocess.run(command, check=True, **run_kwargs)
    wall = time.perf_counter() - start
    return json.loads((pathlib.Path(workdir) / "metrics.json").read_text()), wall
