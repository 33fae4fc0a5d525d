"""RESULTS.md from the suite's results (and RESULTS.json beside it, for the next run)."""

from __future__ import annotations

import json
import math
import pathlib

from benchmarks.results_sections import owned_sections
from benchmarks.suite.flops import cpu_peak
from benchmarks.suite.tasks import ENTRIES

SIDE_NAMES = {
    "reference": "plain Keras script",
    "same": "kerasapps, same settings",
    "tuned": "kerasapps, tuned",
    "control": "model.fit on kerasapps' model + pipeline",
}


def _fmt(value, digits=0) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:,.{digits}f}"


def _spread(summary, digits=0) -> str:
    return f"{_fmt(summary['median'], digits)} ({_fmt(summary['min'], digits)}-{_fmt(summary['max'], digits)})"


def utilisation(task: dict, peak: dict) -> dict | None:
    flops = task["sides"]["same"].get("forward_flops")
    if not flops:
        return None
    # GANs give their own training count (each network's backward passes); the others 3 x forward.
    train = task["sides"]["same"].get("train_flops") or 3 * flops
    best = None
    for side in ("same", "tuned"):
        if side not in task["sides"]:
            continue
        precision = task["sides"][side].get("precision", "float32")
        bf16 = precision == "mixed_bfloat16" and "peak_flops_bf16" in peak
        achieved = train * task["sides"][side]["train"]["median"]
        side_peak = peak["peak_flops_bf16"] if bf16 else peak["peak_flops"]
        if best is None or achieved > best["achieved_flops"]:
            best = {"achieved_flops": achieved, "fraction": achieved / side_peak, "side": side,
                    "precision": precision, "peak_name": "bf16 AMX peak" if bf16 else "fp32 peak"}
    return {"forward_flops": flops, "train_flops_per_example": train, **best}


def bound_text(name: str, task: dict, util: dict | None) -> str:
    if util is None:
        return "FLOPs not counted"
    entry = ENTRIES[name]
    return (f"{1 - util['fraction']:.0%} below the {util['peak_name']} ({util['side']} row, {util['precision']}). "
            + (entry.bound or "not analysed")
            + (" (conv-heavy)" if entry.conv_heavy else ""))


def write(results: dict, machine: str, path: pathlib.Path, uptime: str, mode_note: str) -> None:
    results = dict(results, uptime=uptime)
    peak = cpu_peak()
    shared = max(results["load_before"][0], results["load_after"][0]) > peak["cores"]
    lines = [
        "# kerasapps benchmarks",
        "",
        f"Written by `python -m benchmarks{mode_note}` on {results['started']} ({results['mode']} mode, "
        f"{results['seconds'] / 60:.1f} min)." + (f" **{results['partial']}.**" if results.get("partial") else ""),
        "",
        f"**Machine:** {machine}.",
        f"**CPU peak (assumed):** {peak['peak_flops'] / 1e9:,.0f} GFLOP/s fp32 = {peak['assumption']}."
        + (" bf16 (what `--precision auto` uses on this CPU for tasks that allow it): "
           f"{peak['peak_flops_bf16'] / 1e9:,.0f} GFLOP/s = {peak['assumption_bf16']}." if "peak_flops_bf16" in peak else ""),
        ("**Load:** this CPU was shared with other jobs during the run (load average before "
         if shared else "**Load:** no other jobs ran beside the suite (load average before ")
        + f"{results['load_before'][0]:.2f}, after {results['load_after'][0]:.2f}"
        + (f"; `uptime` at the end: {uptime}). " if uptime != "not recorded" else "). ")
        + "Absolute figures vary between runs by some percent; the ratios come from adjacent, interleaved epochs "
          "and are the figures to trust"
        + ("; with the load above the core count, other jobs took most of the CPU for seconds at a time, so the "
           "wall-clock ratios below swing widely and the **CPU-time ratios** are the ones to read."
           if shared else "."),
        "",
        "## Training throughput, side by side",
        "",
        "Examples/s, median (min-max) over timed epochs run interleaved A B C (D) in one process family: each side is a "
        "long-lived process that keeps its graph and iterator; the parent starts one epoch at a time in each, in turn. "
        "Warm-up (tracing, XLA compilation, buffer fill, one full epoch) is excluded. Ratio = kerasapps / reference "
        "per adjacent pair, median (min-max). *Same settings*: float32, no XLA, steps_per_execution 1, kerasapps' own "
        "pipeline and engine (`Trainer`, with the `StopOnNaN` callback every run has). *Tuned*: the settings named. "
        "*Control* (full mode): `model.fit` on exactly kerasapps' model and pipeline, so same/control isolates the engine. "
        "No progress bars on either side. Issue 9's targets: same >= 0.97, tuned >= 1.3.",
        "",
        "| task | params (ka / ref) | batch | reference ex/s | ka same ex/s | same ratio | ka tuned ex/s | tuned ratio | tuned settings | engine only (same / control, paired) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, task in results["tasks"].items():
        s, r = task["sides"], task["ratios"]
        engine = _spread(task["engine_ratio"], 3) if "engine_ratio" in task else "-"
        params_match = "" if s["same"]["params"] == s["reference"]["params"] else " **(differ)**"
        lines.append(
            f"| {name} | {s['same']['params']:,} / {s['reference']['params']:,}{params_match} | {s['same']['batch_size']} "
            f"| {_spread(s['reference']['train'])} | {_spread(s['same']['train'])} | **{_spread(r['same'], 3)}** "
            + (f"| {_spread(s['tuned']['train'])} | **{_spread(r['tuned'], 3)}** | {task['tuned_settings']}; "
               f"precision auto: {s['tuned'].get('precision', 'float32')} "
               if "tuned" in s else "| - | - | not measured in this mode ")
            + f"| {engine} |")
    lines += [
        "",
        "The same ratios from CPU time (examples per CPU-second of each process, all its threads): less sensitive to "
        "other jobs taking the cores, but they count TensorFlow's spin-waiting as work.",
        "",
        "| task | same ratio (CPU time) | tuned ratio (CPU time) | engine only (CPU time) |",
        "|---|---|---|---|",
    ]
    for name, task in results["tasks"].items():
        c = task["cpu_ratios"]
        lines.append(f"| {name} | {_spread(c['same'], 3)} | {_spread(c['tuned'], 3) if 'tuned' in c else '-'} "
                     f"| {_spread(task['engine_cpu_ratio'], 3) if 'engine_cpu_ratio' in task else '-'} |")
    lines += [
        "",
        "## Utilisation",
        "",
        "Model FLOPs per training example = 3 x forward FLOPs (forward + two backward matmuls), forward counted exactly "
        "from the layers' shapes (conv, dense, LSTM, attention multiply-adds; element-wise work not counted; translation "
        "at the pipeline's mean trimmed sentence lengths). Achieved = that x the best kerasapps examples/s above. "
        "GANs (pix2pix, text_to_image): an example is one training pair (input + target image; image + caption), "
        "forward = every network pass one training step makes (pix2pix: G + 2 D; text-to-image: 3 text encoder + "
        "2 G + 4 D + 2 conditioning), train = forward + each pass's backward (2x where that network's weights get "
        "gradients, 1x where only activation gradients flow, 0 under stop_gradient).",
        "",
        "| task | forward MFLOP/example | train MFLOP/example | achieved GFLOP/s | of CPU peak | what bounds it |",
        "|---|---|---|---|---|---|",
    ]
    for name, task in results["tasks"].items():
        util = utilisation(task, peak)
        if util:
            lines.append(f"| {name} | {_fmt(util['forward_flops'] / 1e6, 1)} | {_fmt(util['train_flops_per_example'] / 1e6, 1)} "
                         f"| {_fmt(util['achieved_flops'] / 1e9, 2)} | {util['fraction']:.2%} | {bound_text(name, task, util)} |")
        else:
            lines.append(f"| {name} | - | - | - | - | {task['sides']['same'].get('flops_error', 'not counted')} |")
    lines += [
        "",
        "## Input pipeline",
        "",
        "Examples/s of the training `tf.data` pipeline alone (iterated without a model, first batches excluded), against "
        "the kerasapps training rate (best of same/tuned). Target: margin >= 3x. The generator row is the built-in "
        "dataset's generation (done once before training, in NumPy/Python).",
        "",
        "| task | kerasapps pipeline ex/s | margin over training | reference pipeline ex/s | built-in generator | generator ex/s |",
        "|---|---|---|---|---|---|",
    ]
    for name, task in results["tasks"].items():
        s = task["sides"]
        train = max(s[x]["train"]["median"] for x in ("same", "tuned") if x in s)
        pipe = s[task["main_side"]]["pipeline"]["examples_per_second"]
        gen = task.get("generator", {})
        margin = pipe / train
        lines.append(f"| {name} | {_fmt(pipe)} | {margin:.1f}x{'' if margin >= 3 else ' **(< 3x)**'} "
                     f"| {_fmt(s['reference']['pipeline']['examples_per_second'])} | {gen.get('name', '-')} "
                     f"| {_fmt(gen.get('examples_per_second'))} |")
    lines += [
        "",
        "## Serving",
        "",
        "The tuned model after its benchmark training, exported as `kerasapps run` exports it; `serving_default` "
        "called in a fresh process that never imports Keras (`tf.saved_model.load`), on encoded PNGs (image tasks) or "
        "sentences (translation): decode, resize, model, and for captioning/translation beam search, all in the graph; "
        "text-to-image takes a caption and a noise seed and returns a PNG. "
        "Beside it, Keras `model.predict` on already-decoded inputs (one forward pass; teacher-forced for the sequence "
        "tasks, so not the same work as generating; for the GANs the generator alone, text-to-image with its text "
        "encoder and conditioning).",
        "",
        "| task | serving p50 / p99 ms (batch 1) | serving ex/s (batch 32) | load s | Keras predict p50 / p99 ms (batch 1) | Keras predict ex/s (batch 32) |",
        "|---|---|---|---|---|---|",
    ]
    for name, task in results["tasks"].items():
        if "serving" not in task:
            lines.append(f"| {name} | not measured in {results['mode']} mode | - | - | - | - |")
            continue
        sv, pr = task["serving"], task["predict"]
        lines.append(f"| {name} | {_fmt(sv['p50_ms'], 1)} / {_fmt(sv['p99_ms'], 1)} | {_fmt(sv['batch32_examples_per_second'])} "
                     f"| {_fmt(sv['load_seconds'], 2)} | {_fmt(pr['p50_ms'], 1)} / {_fmt(pr['p99_ms'], 1)} "
                     f"| {_fmt(pr['batch32_examples_per_second'])} |")
    lines += [
        "",
        "## Memory",
        "",
        "Peak resident memory (ru_maxrss) of `kerasapps run TASK` with the task's defaults except **1 epoch** (training "
        "data generation, model, tracing, one epoch, evaluation with decoding, export: everything but the later epochs, "
        "which allocate nothing new), and of the benchmark's worker processes (reduced data).",
        "",
        "| task | `kerasapps run` peak RSS MB | how | worker peak RSS MB (kerasapps / reference) |",
        "|---|---|---|---|",
    ]
    for name, task in results["tasks"].items():
        memory, s = task.get("memory", {}), task["sides"]
        if "peak_rss_mb" in memory:
            how = f"{memory['command']}, {memory['seconds']:.0f} s"
            if memory.get("reused"):
                how += f"; measured {memory['measured']}, read from benchmarks/memory.json"
            value = _fmt(memory["peak_rss_mb"])
        else:
            value, how = "-", memory.get("error") or memory.get("not_measured", "not measured")
        lines.append(f"| {name} | {value} | {how} | {_fmt(s[task['main_side']].get('peak_rss_mb'))} / "
                     f"{_fmt(s['reference'].get('peak_rss_mb'))} |")
    lines += ["", "## Not yet benchmarked", ""]
    if results["skipped"]:
        lines += [f"- {name}: {why}" for name, why in results["skipped"].items()]
    else:
        lines.append("- none")
    for name, entry in ENTRIES.items():
        if name not in results["tasks"] and name not in results["skipped"]:
            ok, why = entry.available()
            lines.append(f"- {name}: {'not selected in this run' if ok else why}")
    lines += ["", "## Setup per side", "",
              "| task | side | setup s | warm-up s | steps per timed epoch | timed epochs |", "|---|---|---|---|---|---|"]
    for name, task in results["tasks"].items():
        for side, s in task["sides"].items():
            lines.append(f"| {name} | {SIDE_NAMES[side]} | {s['setup_seconds']:.1f} | {_fmt(s.get('warmup_seconds'), 1)} "
                         f"| {s.get('steps_per_timed_epoch', '-')} | {s['train']['n']} |")
    path.parent.mkdir(parents=True, exist_ok=True)
    kept = owned_sections(path.read_text()) if path.exists() else ""  # e.g. serve_load's: theirs to rewrite
    path.write_text("\n".join(lines) + "\n" + ("\n" + kept if kept else ""))
    results = dict(results, machine=machine, cpu_peak={k: v for k, v in peak.items()})
    path.with_suffix(".json").write_text(json.dumps(results, indent=1, default=str) + "\n")
