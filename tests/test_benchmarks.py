"""The benchmark suite runs and reports sane figures (``--tiny``: classification only, seconds).

No speed is asserted: the figures depend on the machine and its load.
"""

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _numbers(tree):
    if isinstance(tree, dict):
        for value in tree.values():
            yield from _numbers(value)
    elif isinstance(tree, (list, tuple)):
        for value in tree:
            yield from _numbers(value)
    elif isinstance(tree, (int, float)) and not isinstance(tree, bool):
        yield tree


def test_tiny_suite_writes_results(tmp_path):
    out = tmp_path / "RESULTS.md"
    subprocess.run([sys.executable, "-m", "benchmarks", "--tiny", "--out", str(out)], cwd=ROOT, check=True,
                   timeout=300, capture_output=True)
    text = out.read_text()
    assert "**Machine:**" in text and "TensorFlow" in text and "cores" in text
    assert "shared with other jobs" in text
    results = json.loads(out.with_suffix(".json").read_text())
    task = results["tasks"]["classification"]
    sides = task["sides"]
    for side in ("reference", "same"):
        assert sides[side]["params"] == sides["reference"]["params"]  # the reference is the same model
        figures = [sides[side]["train"]["median"], sides[side]["pipeline"]["examples_per_second"]]
        assert all(math.isfinite(v) and v > 0 for v in figures)
    assert math.isfinite(task["ratios"]["same"]["median"]) and task["ratios"]["same"]["median"] > 0
    assert sides["same"]["forward_flops"] > 0
    serving = task["serving"]
    for key in ("p50_ms", "p99_ms", "batch32_examples_per_second"):
        assert math.isfinite(serving[key]) and serving[key] > 0
    assert all(math.isfinite(v) for v in _numbers(task))
    for line in ("## Training throughput", "## Utilisation", "## Input pipeline", "## Serving", "## Memory"):
        assert line in text
