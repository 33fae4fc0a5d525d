"""The ``kerasapps`` command line.

``list`` and ``--help`` never import TensorFlow; every other command imports it
only once the task is known. User mistakes print one line and exit with code 2.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import sys
import traceback
import warnings

import click

from kerasapps.errors import ExportCheckFailed, PluginDeprecationWarning, PluginFailed, TrainingFailed, UsageError

EXIT_USAGE = 2
# TensorFlow's C++ start-up chatter is noise for CLI users; set it before TF loads.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


class _UserError(click.ClickException):
    exit_code = EXIT_USAGE

    def show(self, file=None):
        click.echo(f"error: {self.format_message()}", err=True)


class _Failure(click.ClickException):
    exit_code = 1

    def show(self, file=None):
        click.echo(f"error: {self.format_message()}", err=True)


def _one_line(exc: click.UsageError, command_path: str | None = None) -> _UserError:
    """A bad option or argument as one `error:` line, not click's usage block."""
    command_path = exc.ctx.command_path if exc.ctx is not None else command_path
    where = f" (see `{command_path} --help`)" if command_path else ""
    return _UserError(exc.format_message() + where)


class _Group(click.Group):
    def make_context(self, info_name, args, parent=None, **extra):
        # The group's own options are parsed here, before invoke: `kerasapps --bogus`.
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.exceptions.NoArgsIsHelpError:  # plain `kerasapps` prints the help, as before
            raise
        except click.UsageError as exc:
            raise _one_line(exc, info_name) from None

    def invoke(self, ctx):
        try:
            with _plugin_deprecations_as_warning_lines():
                return super().invoke(ctx)
        except PluginFailed as exc:  # the line for the user, then the traceback for the plugin's author
            click.echo(f"error: {exc}", err=True)
            traceback.print_exception(exc.__cause__, file=sys.stderr)
            sys.exit(1)
        except UsageError as exc:
            raise _UserError(str(exc)) from None
        except click.UsageError as exc:
            raise _one_line(exc) from None
        except KeyboardInterrupt:
            click.echo("interrupted; the last completed epoch is kept: run the same command to resume", err=True)
            sys.exit(130)
        except (TrainingFailed, ExportCheckFailed) as exc:
            raise _Failure(str(exc)) from None


@contextlib.contextmanager
def _plugin_deprecations_as_warning_lines():
    """Show each plugin deprecation once, as one ``warning:`` line when it is raised (Python
    hides DeprecationWarnings outside ``__main__``); other warnings are shown as before."""
    shown = set()
    with warnings.catch_warnings():
        warnings.simplefilter("always", PluginDeprecationWarning)
        show = warnings.showwarning

        def show_warning(message, category, *args, **kwargs):
            if not issubclass(category, PluginDeprecationWarning):
                show(message, category, *args, **kwargs)
            elif str(message) not in shown:
                shown.add(str(message))
                click.echo(f"warning: {message}", err=True)

        warnings.showwarning = show_warning
        yield


def _registry(ctx):
    from kerasapps.registry import discover

    obj = ctx.find_root().obj
    if "registry" not in obj:
        # What discovery warns about (a broken plugin, a `-p no:NAME` that matches nothing) is
        # the user's business: one `warning:` line each, not Python's warning format.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            obj["registry"] = discover(obj.get("plugins", ()))
        for warning in caught:
            click.echo(f"warning: {warning.message}", err=True)
    return obj["registry"]


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-p", "plugins", multiple=True, metavar="NAME",
              help="Load plugin NAME even if autoloading is off; `-p no:NAME` switches plugin NAME off.")
@click.version_option(package_name="kerasapps", prog_name="kerasapps")
@click.pass_context
def cli(ctx, plugins):
    """Deep-learning applications as Keras task plugins.

    \b
    kerasapps list                      tasks and where they come from
    kerasapps run classification        train, evaluate, export, show predictions
    kerasapps predict saved_models/classification/1 cat.png

    Set KERASAPPS_DISABLE_PLUGIN_AUTOLOAD=1 to load only plugins named with -p.
    """
    ctx.obj = {"plugins": plugins}


@cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--check", is_flag=True,
              help="Also load every task class (imports TensorFlow), name those that break the Task contract, "
                   "and exit 1 when any plugin is broken.")
@click.pass_context
def list_command(ctx, as_json, check):
    """List tasks, datasets and plugins (broken and switched-off ones too).

    Without --check, task classes are not loaded (no TensorFlow): a plugin is named broken when
    it fails to import, misspells a hook or names a task module that cannot be found.
    """
    registry = _registry(ctx)
    broken_tasks = registry.check_tasks() if check else {}
    # A plugin with a broken task is listed once, under broken plugins; its other tasks still work.
    plugins_with_broken_tasks = {registry.tasks[name][1].name for name in broken_tasks}
    tasks = [
        {"task": name, "summary": spec.summary, "plugin": info.name,
         "distribution": info.distribution, "version": info.version}
        for name, (spec, info) in sorted(registry.tasks.items()) if name not in broken_tasks
    ]
    datasets = [
        {"dataset": name, "summary": spec.summary, "plugin": info.name, "distribution": info.distribution}
        for name, (spec, info) in sorted(registry.datasets.items())
    ]
    plugins = [{"plugin": p.name, "module": p.value, "distribution": p.distribution, "version": p.version}
               for p in registry.plugins if not p.error and p.name not in plugins_with_broken_tasks]
    disabled = [{"plugin": info.name, "distribution": info.distribution, "version": info.version, "why": why}
                for info, why in registry.disabled.values()]
    broken = [{"plugin": p.name, "distribution": p.distribution, "version": p.version, "error": p.error}
              for p in registry.broken]
    broken += [{"plugin": info.name, "distribution": info.distribution, "version": info.version, "task": name,
                "error": broken_tasks[name]}
               for name, (_spec, info) in sorted(registry.tasks.items()) if name in broken_tasks]
    if as_json:
        click.echo(json.dumps({"tasks": tasks, "datasets": datasets, "plugins": plugins, "disabled_plugins": disabled,
                               "broken_plugins": broken}, indent=2))
    else:
        _echo_table("tasks:", [[t["task"], t["distribution"], t["version"], t["summary"]] for t in tasks],
                    empty="(none: install a task plugin, e.g. pip install -e plugins/classification)")
        _echo_table("datasets:", [[d["dataset"], d["distribution"], d["summary"]] for d in datasets])
        _echo_table("plugins:", [[p["plugin"], p["distribution"], p["version"], p["module"]] for p in plugins])
        if disabled:
            _echo_table("switched off:", [[d["plugin"], d["distribution"], d["version"], d["why"]] for d in disabled])
        if broken:
            _echo_table("broken plugins:", [[b["plugin"], b["distribution"], b["version"],
                                             (f"task {b['task']!r}: " if "task" in b else "") + b["error"]]
                                            for b in broken])
    if check and broken:
        ctx.exit(1)


def _echo_table(title: str, rows: list[list[str]], empty: str = "") -> None:
    """``title``, then ``rows`` indented, each column but the last padded to its widest entry."""
    click.echo(title)
    if not rows and empty:
        click.echo(f"  {empty}")
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]) - 1)] if rows else []
    for row in rows:
        cells = [f"{cell:<{width}}" for cell, width in zip(row, widths)] + [str(row[-1])]
        click.echo(("  " + "  ".join(cells)).rstrip())


@cli.command()
@click.argument("task")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def info(ctx, task, as_json):
    """Show a task's config fields, recipes, datasets and serving signature."""
    from kerasapps.data.sources import DATASET_KINDS
    from kerasapps.recipes import find_recipes

    registry = _registry(ctx)
    task_class = registry.load_task(task)
    description = task_class.describe()
    description["recipes"] = [{"name": r.name, "description": r.description}
                              for r in find_recipes(task_class, task).values()]
    if as_json:
        click.echo(json.dumps(description, indent=2, default=str))
        return
    click.echo(f"{task}: {description['summary']}")
    _echo_table("\nconfig (--set KEY=VALUE):", [[row["name"], row["type"], f"default {row['default']!r}", row["help"]]
                                                 for row in description["config"]])
    if description["recipes"]:
        _echo_table("\nrecipes (--recipe NAME):", [[r["name"], r["description"]] for r in description["recipes"]])
    click.echo("\ndatasets (--dataset):")
    for name in description["dataset_kinds"]:
        kind = DATASET_KINDS.get(name)
        if kind is None:
            continue
        if name == "registered":
            names = [dataset for dataset in task_class.registered_datasets if dataset in registry.datasets]
            click.echo(f"  {', '.join(names) or 'none installed'}  ({kind.help})")
        else:
            click.echo(f"  {kind.syntax}  {description['folder_layout'] if name == 'folder' else kind.help}")
    click.echo(f"\nbest checkpoint on: {description['monitor'] or 'none (the last epoch is kept)'}")
    _echo_table("\nserving_default inputs:", [[name, text] for name, text in description["serving_inputs"].items()])
    _echo_table("serving_default outputs:", [[name, text] for name, text in description["serving_outputs"].items()])


def _run_options(func):
    """The task argument, every run option (declared once, in ``kerasapps.training.options``) and --print-config."""
    from kerasapps.training.options import click_options

    func = click.option("--print-config", is_flag=True, help="Print the resolved config and exit.")(func)
    return click.argument("task")(click_options(func))


def _api_settings(ctx, kwargs):
    """The command line's options as the Python API's arguments: (task, overrides, registry, settings)."""
    from kerasapps.config import parse_set_options

    overrides = parse_set_options(kwargs.pop("overrides"))
    task = kwargs.pop("task")
    settings = {("config" if name == "config_file" else name): value for name, value in kwargs.items()
                if value is not None}
    return task, overrides, _registry(ctx), settings


def _task_run(ctx, kwargs, use_workdir_config=False, fresh=False):
    """The resolved, checked TaskRun of a command (``--print-config`` prints its settings and exits)."""
    from kerasapps import runs

    print_config = kwargs.pop("print_config")
    task, overrides, registry, settings = _api_settings(ctx, kwargs)
    task_run = runs.make_run(task, overrides=overrides, registry=registry, use_workdir_config=use_workdir_config,
                             fresh=fresh, **settings)
    if print_config:
        click.echo(json.dumps(task_run.resolved, indent=2, default=str))
        ctx.exit(0)
    return task_run


def _call_api(ctx, function, kwargs, use_workdir_config=False, **arguments):
    """Run ``function`` (one of :mod:`kerasapps.runs`) with the command line's options: the
    command line is this thin layer over the Python API. ``--print-config`` prints the resolved
    settings instead."""
    if kwargs["print_config"]:
        _task_run(ctx, kwargs, use_workdir_config, arguments.get("fresh", False))
    kwargs.pop("print_config")
    task, overrides, registry, settings = _api_settings(ctx, kwargs)
    function(task, overrides=overrides, registry=registry, **arguments, **settings)


@cli.command()
@_run_options
@click.option("--fresh", is_flag=True, help="Discard the workdir's checkpoints and start over.")
@click.option("--samples", default=5, show_default=True, help="Held-out predictions to print.")
@click.pass_context
def run(ctx, fresh, samples, **kwargs):
    """Train TASK, evaluate it on the held-out split, export it and show predictions."""
    from kerasapps import runs

    _call_api(ctx, runs.run, kwargs, fresh=fresh, samples=samples)


@cli.command()
@_run_options
@click.option("--fresh", is_flag=True, help="Discard the workdir's checkpoints and start over.")
@click.pass_context
def train(ctx, fresh, **kwargs):
    """Train TASK (resumes from the workdir's last completed epoch)."""
    from kerasapps import runs

    _call_api(ctx, runs.train, kwargs, fresh=fresh)


@cli.command()
@_run_options
@click.pass_context
def evaluate(ctx, **kwargs):
    """Evaluate the workdir's best weights on the held-out split (with the config they were
    trained with; options given here override it)."""
    from kerasapps import runs

    _call_api(ctx, runs.evaluate, kwargs, use_workdir_config=True)


@cli.command()
@_run_options
@click.option("--format", "export_format", type=click.Choice(["savedmodel", "litert", "onnx"]), default="savedmodel",
              show_default=True, help="savedmodel: the whole serving function (TF Serving's layout); litert, onnx: "
                                      "the task's tensor core (pixels in, scores out) under EXPORT_DIR/TASK-FORMAT/, "
                                      "checked against the Keras model on test inputs before it is written.")
@click.option("--quantize", type=click.Choice(["none", "float16", "int8"]), default="none", show_default=True,
              help="LiteRT post-training quantization: float16 weights, or int8 (full-integer, calibrated on "
                   "training inputs).")
@click.option("--representative-examples", type=click.IntRange(min=1), default=256, show_default=True,
              help="Training inputs int8 quantization calibrates on.")
@click.pass_context
def export(ctx, export_format, quantize, representative_examples, **kwargs):
    """Export the workdir's best weights as the next version (with the config they were trained
    with; options given here override it): a SavedModel, or a LiteRT / ONNX file."""
    from kerasapps import runs
    from kerasapps.serving.formats import check_format

    check_format(export_format, quantize)  # before the task is loaded
    _call_api(ctx, runs.export, kwargs, use_workdir_config=True, format=export_format, quantize=quantize,
              representative_examples=representative_examples)


@cli.command()
@_run_options
@click.option("--attack", "attacks", default="fgsm,pgd", show_default=True, metavar="NAMES",
              help="Comma-separated attacks: fgsm, pgd (L-infinity, random start).")
@click.option("--epsilon", "epsilons", default="0,2/255,4/255,8/255", show_default=True, metavar="LIST",
              help="Perturbation budgets, fractions of the input's pixel range (8/255: 8 levels of 0..255 pixels).")
@click.option("--steps", default=10, show_default=True, type=int, help="PGD steps.")
@click.option("--step-size", default=None, metavar="FRACTION",
              help="PGD step, a fraction of the pixel range (default 2.5 * epsilon / steps).")
@click.option("--target", default=None, metavar="CLASS", help="Targeted attack towards CLASS (id or name).")
@click.option("--examples", default=None, type=int, help="Attack only N test examples, spread evenly over the split.")
@click.option("--panels", default=4, show_default=True, type=int,
              help="Pictures (clean | perturbation | adversarial) written under WORKDIR/samples.")
@click.option("--check-epsilon", default="0.5", show_default=True, metavar="FRACTION",
              help="Epsilon of the gradient-masking check ('none': skip it).")
@click.pass_context
def attack(ctx, attacks, epsilons, steps, step_size, target, examples, panels, check_epsilon, **kwargs):
    """Attack the workdir's trained model on its test split with adversarial examples
    (white-box, L-infinity); write WORKDIR/attack/report.json and a plot of the score vs epsilon."""
    from kerasapps.adversarial.settings import AttackSettings

    settings = AttackSettings.parse(attacks, epsilons, steps, step_size, target, examples, panels, check_epsilon,
                                    seed=kwargs["seed"] or 0)
    if kwargs["precision"] not in (None, "float32"):
        raise UsageError(f"--precision {kwargs['precision']}: attacks run in float32 (input gradients in "
                         "half precision are too coarse); leave --precision out")
    kwargs["precision"] = "float32"
    task_run = _task_run(ctx, kwargs, use_workdir_config=True)
    from kerasapps.adversarial.attack_run import attack_trained_run, report_table

    report = attack_trained_run(task_run, settings)
    task_run.finish()
    if not task_run.is_chief:
        return
    for line in report_table(report):
        click.echo(line)
    for warning in report["warnings"]:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"report: {report['files']['report']}")
    click.echo(f"plot: {report['files']['plot']}")
    if report["files"]["panels"]:
        click.echo(f"panels: {len(report['files']['panels'])} under {pathlib.Path(report['files']['panels'][0]).parent}")


@cli.command()
@_run_options
@click.option("--keep", required=True, metavar="FRACTION",
              help="Share of each prunable layer's channels kept, 0 < FRACTION <= 1; per layer: LAYER=FRACTION "
                   "items, comma-separated, with one bare FRACTION for the others (default 1), e.g. "
                   "conv1=0.25,0.5.")
@click.option("--method", default="spectral", show_default=True, metavar="NAME",
              help="spectral (Suzuki et al.: greedy selection by feature covariance, next layer re-fitted), "
                   "l1 (largest-L1 filters, Li et al.) or random.")
@click.option("--samples", default=2000, show_default=True, type=int,
              help="Training examples the feature covariances are measured on.")
@click.option("--fine-tune-epochs", default="0", show_default=True, metavar="EPOCHS",
              help="Train the narrow model this many epochs after pruning (0.3: 30%% of one epoch's steps).")
@click.option("--fine-tune-learning-rate", default=None, type=float, metavar="RATE",
              help="The fine-tuning's learning rate (default: the run's own), recorded in the new run's config.")
@click.option("--ridge", default=1e-4, show_default=True, type=float,
              help="Spectral re-fit's lambda, relative to the mean channel variance.")
@click.option("--recalibrate", is_flag=True,
              help="Re-estimate the narrow model's BatchNormalization statistics on the --samples training "
                   "examples (a forward pass, no weight changed) before scoring and fine-tuning it.")
@click.option("--out", default=None, metavar="DIR",
              help="The new run folder (default: WORKDIR-METHOD-keepFRACTION); must not hold anything.")
@click.pass_context
def compress(ctx, keep, method, samples, fine_tune_epochs, fine_tune_learning_rate, ridge, recalibrate, out,
             **kwargs):
    """Narrow the workdir's trained model (fewer channels per layer, the next layer re-fitted),
    optionally fine-tune it, and write it as a new run folder with a SavedModel export; print
    parameters, multiply-adds and the metric before and after."""
    from kerasapps.compression.compress_run import CompressionSettings

    try:
        fine_tune_epochs = float(fine_tune_epochs)
    except ValueError:
        raise UsageError(f"--fine-tune-epochs: expected a number, got {fine_tune_epochs!r}") from None
    settings = CompressionSettings.parse(keep, method, samples, fine_tune_epochs, out, ridge, seed=kwargs["seed"] or 0,
                                         fine_tune_learning_rate=fine_tune_learning_rate, recalibrate=recalibrate)
    if kwargs["strategy"] == "multi-worker":
        raise UsageError("--strategy multi-worker: compress runs in one process (its fine-tuning may use "
                         "--strategy mirrored); compress first, then `kerasapps launch ... train` the new run")
    task_run = _task_run(ctx, kwargs, use_workdir_config=True)
    from kerasapps.compression.compress_run import compress_trained_run, report_table

    report = compress_trained_run(task_run, settings)
    task_run.finish()
    if not task_run.is_chief:
        return
    for line in report_table(report):
        click.echo(line)
    click.echo(f"new run: {report['workdir']}")
    click.echo(f"exported: {report['export_path']}")


@cli.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="Worker processes to start on this machine.")
@click.option("--command", "command", type=click.Choice(["run", "train"]), default="run", show_default=True,
              help="What each worker does.")
@click.option("--network", type=click.Choice(["auto", "private", "host"]), default="auto", show_default=True,
              help="private: the workers share a network namespace with loopback only, so their unauthenticated "
                   "gRPC ports cannot be reached from outside; host: this machine's network; auto: private "
                   "where the kernel allows it, else host with a warning.")
@click.argument("task")
@click.argument("run_args", nargs=-1, type=click.UNPROCESSED, metavar="[RUN OPTIONS]...")
@click.pass_context
def launch(ctx, workers, command, network, task, run_args):
    """Train TASK with --strategy multi-worker on N local worker processes.

    Each worker gets its own TF_CONFIG (127.0.0.1, free ports; worker 0 is the chief)
    and runs `kerasapps COMMAND TASK [RUN OPTIONS] --strategy multi-worker`. Their
    output is prefixed with [worker i]. If one fails, all are stopped. Exits with the
    chief's status (or the first failing worker's). On a cluster, run `kerasapps run
    --strategy multi-worker` on each host with that host's TF_CONFIG instead.
    """
    from kerasapps.training.launch import launch_workers

    _registry(ctx).task(task)  # an unknown task fails here, before any worker starts
    if any(arg == "--strategy" or arg.startswith("--strategy=") for arg in run_args):
        raise UsageError("launch sets --strategy multi-worker itself; leave --strategy out")
    plugin_args = [arg for name in ctx.find_root().obj.get("plugins", ()) for arg in ("-p", name)]
    ctx.exit(launch_workers(workers, [*plugin_args, command, task, *run_args], network=network))


@cli.command()
@click.argument("model_dir", type=click.Path(file_okay=False))
@click.argument("inputs", nargs=-1, required=True)
@click.option("--out", default="predictions", show_default=True, help="Folder for image outputs.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per input.")
@click.option("--with", "extras", multiple=True, metavar="NAME=VALUE",
              help="A value for another input of the signature: a number (--with seed=7) or, for a second "
                   "string input, one text for every input (--with text='a dog runs'). Repeatable.")
def predict(model_dir, inputs, out, as_json, extras):
    """Run a SavedModel's serving_default on files (``*_bytes`` inputs) or strings.

    For text inputs, ``-`` reads one input per line from standard input and
    ``@FILE`` one per line from FILE. Numeric inputs besides the main one take
    ``--with NAME=VALUE``; left out, they get an empty batch (the model's default). A second
    string input takes one ``--with NAME=TEXT`` for every input.
    """
    from kerasapps.serving.predict import predict_inputs

    values = {}
    for extra in extras:
        name, sep, value = extra.partition("=")
        if not sep or not name:
            raise UsageError(f"--with expects NAME=VALUE, got {extra!r}")
        values[name.strip()] = value.strip()
    for record in predict_inputs(model_dir, inputs, pathlib.Path(out), values):
        if as_json:
            click.echo(json.dumps(record, default=str))
        else:
            source = record.pop("input")
            click.echo(f"{source}: " + "  ".join(f"{k}={v}" for k, v in record.items()))


@cli.command()
@click.argument("model_root", type=click.Path(exists=True, file_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8501, show_default=True, type=click.IntRange(0, 65535), help="0: any free port.")
@click.option("--batch-window-ms", default=5.0, show_default=True, type=click.FloatRange(min=0),
              help="How long a request waits for others to batch with.")
@click.option("--max-batch-size", default=32, show_default=True, type=click.IntRange(min=1), help="Rows per batch.")
@click.option("--max-body-mb", default=10.0, show_default=True, type=click.FloatRange(min=0), help="Request body limit.")
@click.option("--max-image-pixels", default=4096 * 4096, show_default=True, type=click.IntRange(min=1),
              help="Width x height limit per image, read from its header before decoding.")
@click.option("--label", "labels", multiple=True, metavar="MODEL:LABEL=VERSION",
              help="Name a version for /labels/LABEL URLs, e.g. classification:stable=1 (repeatable).")
def serve(model_root, host, port, batch_window_ms, max_batch_size, max_body_mb, max_image_pixels, labels):
    """Serve SavedModels with TensorFlow Serving's REST API and a demo page at /.

    MODEL_ROOT is a base folder of MODEL/VERSION/ SavedModels (saved_models/), one model's
    folder of versions, or one SavedModel folder. New versions are picked up without a restart.
    """
    from kerasapps.serving.server import ServerSettings, run_server

    version_labels = {}
    for label in labels:
        model, _, rest = label.partition(":")
        name, _, version = rest.partition("=")
        if not (model and name and version.isdigit()):
            raise UsageError(f"--label expects MODEL:LABEL=VERSION, got {label!r}")
        version_labels[(model, name)] = int(version)
    run_server(ServerSettings(model_root, version_labels, int(max_body_mb * 2**20), max_image_pixels,
                              batch_window_ms, max_batch_size), host=host, port=port, ready_message=click.echo)


def main(argv=None):
    """Console-script entry point."""
    cli.main(args=argv, prog_name="kerasapps")


if __name__ == "__main__":
    main()
