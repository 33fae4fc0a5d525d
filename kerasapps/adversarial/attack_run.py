"""``kerasapps attack``: a trained run's model attacked on its test split, the report written
under ``<workdir>/attack/`` and the panels under ``<workdir>/samples/``.

Example::

    run = TaskRun(registry, RunOptions(task="classification", workdir="runs/mnist", precision="float32",
                                       use_workdir_config=True))
    report = attack_trained_run(run, AttackSettings.parse(epsilons="0,0.1,0.3", steps=40))
    report["attacks"]["pgd"]["results"][-1]["score"]   # accuracy under PGD-40 at epsilon 0.3
"""

from __future__ import annotations

import dataclasses
import json
import time

from kerasapps.adversarial.settings import AttackSettings


def attack_trained_run(task_run, settings: AttackSettings) -> dict:
    """Attack ``task_run``'s trained model (see the module docstring); on the chief, write
    ``attack/report.json``, ``attack/<score>_vs_epsilon.png`` and ``samples/adversarial_*.png``.

    Returns the report (a JSON-able dict; its ``files`` name what was written).
    """
    from kerasapps.adversarial.robustness import (RobustnessMeter, measure_robustness, plot_png, resolve_target,
                                                  take_examples, write_panels)
    from kerasapps.training.workdir import write_bytes_atomic, write_json_atomic

    started = time.perf_counter()
    weights = task_run.load_trained()
    task = task_run.task
    with task_run._plugin("attack_surface"):
        surface = task.attack_surface(task_run.model)
    if surface.score is None:
        monitor = task.monitor or "loss"
        surface = dataclasses.replace(surface, score=monitor[4:] if monitor.startswith("val_") else monitor)
    target = resolve_target(settings.target, surface)
    dataset = take_examples(task_run.datasets["test"], settings.examples)
    meter = RobustnessMeter(task_run.model, task_run.strategy, surface, settings, target)
    with task_run._plugin():  # the task's test_step and loss run inside the attack
        figures = measure_robustness(meter, dataset)
        panels = []
        if task_run.is_chief and settings.panels:
            panels = write_panels(meter, dataset, task_run.workdir / "samples", settings.panels)
    try:  # the precision the run trained under (metrics.json records what the runtime chose)
        trained_precision = json.loads(task_run.folder.metrics_file.read_text()).get("precision")
    except (OSError, ValueError):
        trained_precision = None
    report = {
        "task": task.name,
        "workdir": str(task_run.workdir),
        "weights": weights,
        "split": task.info.get("scored_split", "test"),
        "examples": figures["clean"]["examples"],
        "threat_model": "white-box, L-infinity, " + (f"targeted (class {settings.target})" if target is not None
                                                      else "untargeted"),
        "target": None if target is None else {"class": target, "name": settings.target},
        "pixel_range": list(surface.pixel_range),
        "epsilon_units": "fraction of the pixel range (epsilon_pixels: in the model's input units)",
        "score": surface.score,
        **task_run.runtime.describe(),  # strategy, replicas, precision (float32: gradients of the inputs)
        "trained_precision": trained_precision,
        **figures,
        "wall_time_seconds": round(time.perf_counter() - started, 2),
    }
    if not task_run.is_chief:
        return report
    folder = task_run.workdir / "attack"
    folder.mkdir(parents=True, exist_ok=True)
    plot = folder / f"{surface.score}_vs_epsilon.png"
    write_bytes_atomic(plot, plot_png(figures, surface.score, f"{task.name} ({report['split']}, "
                                                              f"{report['examples']} examples)"))
    report["files"] = {"report": str(folder / "report.json"), "plot": str(plot), "panels": panels}
    write_json_atomic(folder / "report.json", report)
    return report


def report_table(report: dict) -> list[str]:
    """The report as aligned text lines: one row per attack and epsilon.

    Returns the lines (no trailing newlines).
    """
    score = report["score"]
    lines = [f"{report['task']} on {report['examples']} {report['split']} examples, {report['threat_model']}; "
             f"clean {score} {report['clean']['score']:.4f}",
             f"  {'attack':<8} {'epsilon':>9} {'pixels':>8} {score:>14} {'examples/s':>11}"]
    for name, attack in report["attacks"].items():
        steps = attack["parameters"].get("steps")
        label = f"{name}-{steps}" if steps else name
        for row in attack["results"]:
            rate = f"{row['examples_per_second']:.1f}" if row["examples_per_second"] else "-"
            lines.append(f"  {label:<8} {row['epsilon']:>9.4g} {row['epsilon_pixels']:>8.4g} "
                         f"{row['score']:>14.4f} {rate:>11}")
    check = report["gradient_masking_check"]
    if check is not None and check["passed"]:
        lines.append(f"  gradient-masking check passed: {check['attack']} at epsilon {check['epsilon']:g} takes "
                     f"{score} to {check['score']:.4f}")
    return lines


__all__ = ["attack_trained_run", "report_table"]
