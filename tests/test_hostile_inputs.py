"""A hostile user's inputs and faults, through the CLI: each is one `error:` line, exit 2, no traceback,
and nothing already done is lost.

All of it runs on the fake task of tests/plugins (its fields declare each kind of limit the core
checks; it reads folder: datasets too), so no first-party plugin is needed. Most cases run
in-process with click's CliRunner or the Python API; only the kill -9 faults run the CLI in a
subprocess, since they kill it.
"""

import json
import os
import pathlib
import signal
import subprocess
import sys

import pytest
from click.testing import CliRunner

import kerasapps
from tests.conftest import FAKE, FAKE_ENV, ROOT, cli

from kerasapps.cli import cli as kerasapps_cli
from kerasapps.errors import UsageError

sys.path.insert(0, str(ROOT / "tests" / "plugins"))  # the fake plugin, loaded in-process with -p kerasapps_fake
PLUGINS = ["kerasapps_fake"]
# Subprocesses find the fake plugin and, before the installed one, this checkout's kerasapps.
FAKE_PATH_ENV = {"PYTHONPATH": os.pathsep.join(filter(None, [FAKE_ENV["PYTHONPATH"], str(ROOT),
                                                             os.environ.get("PYTHONPATH")]))}

# One tiny training configuration (a second or two on 2 cores).
SMALL = ["--epochs", "1", "--batch-size", "16", "--set", "train_examples=32", "--set", "eval_examples=16"]


def invoke(args, cwd):
    """Run the CLI in-process in ``cwd`` with the fake plugin loaded (``-p kerasapps_fake ARGS``);
    returns click's Result."""
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(kerasapps_cli, [*FAKE, *map(str, args)], catch_exceptions=True)
    finally:
        os.chdir(old)


def assert_one_error(result, fragment, code=2):
    """Exit ``code``, exactly one `error:` line holding ``fragment``, no traceback."""
    stderr = result.stderr
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    if result.exception is not None:
        assert isinstance(result.exception, SystemExit), repr(result.exception)
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    assert fragment in errors[0], errors[0]
    assert "Traceback" not in result.output


def write(path, data: bytes | str):
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
    return path


# A PNG header (signature and IHDR) declaring 20000 x 20000 pixels: 1.2 GB decoded from 33 bytes.
PNG_BOMB = b"\x89PNG\r\n\x1a\n" + (13).to_bytes(4, "big") + b"IHDR" + (20000).to_bytes(4, "big") * 2 + bytes(9)
# (case id, files to write {name: content}, arguments, fragment of the one error line)
# The fake task's fields declare one limit of each kind: bounds (image_size, units, dropout), inherited
# ones (epochs, batch_size, learning_rate from TaskConfig), a tuple's items (filters), choices
# (kernel_size) and a Literal (activation).
CASES = [
    ("negative image size", {}, ["run", "fake", "--set", "image_size=-5"],
     "image_size: expected a value >= 8 and <= 512; got -5"),
    ("huge image size", {}, ["run", "fake", "--set", "image_size=100000"], "image_size: expected"),
    ("zero width", {}, ["run", "fake", "--set", "units=0"], "units: expected a value >= 1; got 0"),
    ("zero train examples", {}, ["run", "fake", "--set", "train_examples=0"],
     "train_examples: expected a value >= 1; got 0"),
    ("zero epochs in a file", {"c.yaml": "epochs: 0\n"}, ["run", "fake", "--config", "c.yaml"],
     "epochs: expected a value >= 1"),
    ("inherited minimum", {}, ["run", "fake", "--set", "batch_size=0"], "batch_size: expected a value >= 1"),
    ("zero learning rate", {}, ["run", "fake", "--set", "learning_rate=0"], "learning_rate: expected a value > 0"),
    ("dropout of one", {}, ["run", "fake", "--set", "dropout=1"], "dropout: expected a value >= 0 and < 1"),
    ("tuple item", {}, ["run", "fake", "--set", "filters=8,0"], "filters: expected a value >= 1; got (8, 0)"),
    ("kernel choice", {}, ["run", "fake", "--set", "kernel_size=2"], "kernel_size: expected one of 1, 3, 5"),
    ("literal choice", {}, ["run", "fake", "--set", "activation=sigmoid"],
     "activation: expected one of relu, tanh; got 'sigmoid'"),
    ("memory", {}, ["run", "fake", "--set", "train_examples=10000000000"], "GiB of memory, more than the"),
    ("negative seed", {}, ["run", "fake", "--seed", "-1"], "seed: expected a value >= 0"),
    ("binary config", {"bin.yaml": b"\xff\xfe\x00\x01binary"}, ["run", "fake", "--config", "bin.yaml"],
     "is not UTF-8 text"),
    ("NUL bytes in config", {"nul.yaml": b"epochs: 1\x00\x00"}, ["run", "fake", "--config", "nul.yaml"],
     "holds binary data"),
    ("malformed JSON", {"c.json": "{epochs: 1"}, ["run", "fake", "--config", "c.json"], "not valid JSON"),
    ("malformed YAML", {"c.yaml": "epochs: [1\n"}, ["run", "fake", "--config", "c.yaml"], "not valid YAML"),
    ("config not a mapping", {"c.yaml": "- 1\n- 2\n"}, ["run", "fake", "--config", "c.yaml"],
     "must hold a mapping"),
    ("dataset as int", {"c.yaml": "dataset: 5\n"}, ["run", "fake", "--config", "c.yaml"],
     "dataset: expected a string"),
    ("path as int", {"c.yaml": "workdir: 5\n"}, ["run", "fake", "--config", "c.yaml"],
     "workdir: expected a string"),
    ("seed not a number", {"c.yaml": "seed: abc\n"}, ["run", "fake", "--config", "c.yaml"],
     "seed: expected int, got 'abc'"),
    ("strategy not a choice", {"c.yaml": "strategy: fastest\n"}, ["run", "fake", "--config", "c.yaml"],
     "strategy: expected one of auto"),
    ("params not a mapping", {"c.yaml": "params: 3\n"}, ["run", "fake", "--config", "c.yaml"],
     "'params' must be a mapping"),
    ("non-string key", {"c.yaml": "1: 2\n"}, ["run", "fake", "--config", "c.yaml"],
     "unknown config key 1 "),
    ("config is a folder", {"d/x": ""}, ["run", "fake", "--config", "d"],
     "Invalid value for '--config': File 'd' is a directory"),
    ("bad option value", {}, ["run", "fake", "--strategy", "bogus"], "Invalid value for '--strategy'"),
    ("unknown option", {}, ["run", "fake", "--epoch", "3"], "No such option '--epoch'. Did you mean '--epochs'?"),
    ("unknown group option", {}, ["--bogus", "list"], "No such option '--bogus'."),
    ("group option without its value", {}, ["-p"], "Option '-p' requires an argument."),
    ("saved config malformed", {"runs/fake/config.json": "{not json"},
     ["evaluate", "fake"], "config.json is not valid JSON"),
    ("saved config wrong type", {"runs/fake/config.json": '{"task": "fake", "seed": "abc"}'},
     ["export", "fake"], "seed: expected int"),
    ("saved config malformed, resuming", {"runs/fake/config.json": "{not json",
                                          "runs/fake/backup/checkpoint": ""},
     ["train", "fake", *SMALL], "config.json is not valid JSON"),
    ("saved params wrong type", {"runs/fake/config.json": '{"params": {"epochs": "abc"}}'},
     ["evaluate", "fake"], "epochs: expected int, got 'abc'"),
    ("saved config a list", {"runs/fake/config.json": "[1, 2]"}, ["evaluate", "fake"],
     "must hold a mapping"),
    ("workdir is a file", {"wd": "x"}, ["train", "fake", "--workdir", "wd", *SMALL],
     "workdir wd is not writable: it is a file"),
    ("workdir under a file", {"wd": "x"}, ["train", "fake", "--workdir", "wd/sub", *SMALL],
     "workdir wd/sub is not writable: Not a directory"),
    ("export dir under a file", {"ex": "x"}, ["run", "fake", "--export-dir", "ex", *SMALL],
     "export directory ex/fake is not writable: Not a directory"),
    ("unknown task", {}, ["run", "nosuchtask"], "unknown task 'nosuchtask'"),
    ("empty folder dataset", {"empty/.keep": ""}, ["train", "fake", "--dataset", "folder:empty", *SMALL],
     "no images found in class folders under empty"),
    ("folder pixel bomb", {f"bomb/{colour}/{name}.png": PNG_BOMB for colour in ("red", "blue") for name in range(20)},
     ["train", "fake", "--dataset", "folder:bomb", *SMALL], "20000x20000 pixels is over the limit of"),
]


@pytest.mark.parametrize("files,args,fragment", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_error_line(tmp_path, files, args, fragment):
    for name, content in files.items():
        write(tmp_path / name, content)
    result = invoke(args, tmp_path)
    assert_one_error(result, fragment)
    # Nothing was trained, generated or exported.
    assert not (tmp_path / "saved_models").exists() or not any((tmp_path / "saved_models").rglob("saved_model.pb"))


# The core's readers that first-party plugins call on their folder: datasets refuse the same way
# (captioning reads captions folders with read_captions_folder; segmentation and pix2pix check each
# file with check_image_file, whose CLI line the folder pixel bomb case above shows).

def test_a_captions_file_naming_an_image_outside_its_folder_is_refused(tmp_path):
    from kerasapps.data.captions import read_captions_folder

    write(tmp_path / "cap" / "Images" / ".keep", "")
    write(tmp_path / "secret.png", PNG_BOMB)
    write(tmp_path / "cap" / "captions.txt", "../../secret.png,a caption\n")
    with pytest.raises(UsageError, match=r"captions\.txt, row 1: image '\.\./\.\./secret\.png' leads outside "):
        read_captions_folder(tmp_path / "cap")
    write(tmp_path / "cap" / "captions.txt", f"{tmp_path / 'secret.png'},a caption\n")  # an absolute path too
    with pytest.raises(UsageError, match=r"row 1: image '/.*secret\.png' leads outside "):
        read_captions_folder(tmp_path / "cap")


def test_a_captions_file_that_is_not_utf8_is_refused(tmp_path):
    from kerasapps.data.captions import read_captions_folder

    write(tmp_path / "cap" / "Images" / ".keep", "")
    write(tmp_path / "cap" / "captions.txt", b"a.png,caf\xe9\n")
    with pytest.raises(UsageError, match=r"captions\.txt is not UTF-8 text \(invalid continuation byte at byte 9\)"):
        read_captions_folder(tmp_path / "cap")


def test_an_image_file_declaring_too_many_pixels_is_refused_from_its_header(tmp_path, monkeypatch):
    from kerasapps.data.images import check_image_bytes, check_image_file

    bomb = write(tmp_path / "bomb.png", PNG_BOMB)
    with pytest.raises(UsageError, match=r"bomb\.png: 20000x20000 pixels is over the limit of 40000000 "
                                         r"\(set \$KERASAPPS_MAX_IMAGE_PIXELS to allow larger images\)"):
        check_image_file(bomb)
    monkeypatch.setenv("KERASAPPS_MAX_IMAGE_PIXELS", str(20000 * 20000))
    assert check_image_file(bomb) == PNG_BOMB  # within a raised limit, only the header was read
    with pytest.raises(UsageError, match=r"^label: 20000x20000 pixels is over the limit of 399999999 "):
        monkeypatch.setenv("KERASAPPS_MAX_IMAGE_PIXELS", str(20000 * 20000 - 1))
        check_image_bytes(PNG_BOMB, "label")


def test_the_graphs_pixel_limit_reads_each_formats_header_for_a_whole_batch(monkeypatch):
    """Serving checks a batch's declared sizes with one set of ops (once per image cost 2.5 ms of
    3.6 for 32 small PNGs): each format's header gives its size, elementwise, as one image alone."""
    import io

    import numpy as np
    import tensorflow as tf
    from PIL import Image

    from kerasapps.data.images import declared_pixels, decode_images

    def encoded(height, width, fmt, **options):
        buffer = io.BytesIO()
        pixels = np.random.default_rng(height * width).integers(0, 255, (height, width, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(buffer, format=fmt, **options)
        return buffer.getvalue()

    files = [encoded(7, 5, "PNG"), encoded(9, 4, "JPEG"), encoded(3, 11, "GIF"), encoded(6, 2, "BMP"),
             encoded(8, 3, "WEBP", lossless=True), encoded(10, 6, "WEBP", quality=50), b"not an image", PNG_BOMB,
             encoded(12, 5, "JPEG", exif=b"Exif\0\0" + bytes(200))]  # a marker before the frame header
    expected = [35, 36, 33, 12, 24, 60, 0, 20000 * 20000, 60]
    assert declared_pixels(tf.constant(files)).numpy().tolist() == expected
    assert [int(declared_pixels(tf.constant(one))) for one in files] == expected  # one image alone
    assert declared_pixels(tf.constant([files[:3], files[3:6]])).numpy().tolist() == [expected[:3], expected[3:6]]

    monkeypatch.setenv("KERASAPPS_MAX_IMAGE_PIXELS", "40")
    serve = tf.function(lambda batch: decode_images(batch, (4, 4)))  # the limit is read when traced
    assert serve(tf.constant(files[:4])).shape == (4, 4, 4, 3)
    with pytest.raises(tf.errors.InvalidArgumentError, match="its header declares more than 40 pixels"):
        serve(tf.constant([files[0], files[5]]))  # the second image, 60 pixels, refuses the batch


# -- faults: kill -9 at the worst moments, then the same command again ----------------------------

# Python run in a subprocess before the CLI: wraps one function so that the process kills itself
# (SIGKILL, as the OOM killer or a preempted machine would) at the exact point under test.
KILL_HOOKS = {
    # mid-epoch: epoch 2's first batch is done, nothing of epoch 2 is saved
    "during training": """
from kerasapps.training.engine import ResumableBackup as target
original = target.on_train_batch_end
def hooked(self, batch, logs=None):
    original(self, batch, logs)
    if len(self.history) == 1:
        os.kill(os.getpid(), signal.SIGKILL)
target.on_train_batch_end = hooked
""",
    # epoch 1's best weights are written, its backup is not
    "after best weights, before backup": """
from kerasapps.training.engine import ResumableBackup as target
original = target.on_epoch_end
def hooked(self, epoch, logs=None):
    if epoch == 0:
        os.kill(os.getpid(), signal.SIGKILL)
    original(self, epoch, logs)
target.on_epoch_end = hooked
""",
    # epoch 1's backup is saved, nothing after it (the window that used to lose the best epoch and its log row)
    "after backup": """
from kerasapps.training.engine import ResumableBackup as target
original = target.on_epoch_end
def hooked(self, epoch, logs=None):
    original(self, epoch, logs)
    if epoch == 0:
        os.kill(os.getpid(), signal.SIGKILL)
target.on_epoch_end = hooked
""",
    # the checkpoint's data files are written, its index (the `checkpoint` file) is not
    "during checkpoint write": """
from tensorflow.python.checkpoint import checkpoint_management as target
original = target.CheckpointManager._record_state
def hooked(self):
    if self._latest_checkpoint and self._latest_checkpoint.endswith("-2"):
        os.kill(os.getpid(), signal.SIGKILL)
    original(self)
target.CheckpointManager._record_state = hooked
""",
    # the best weights' temporary file is written, not yet renamed into place
    "during best-weights write": """
import keras
original = keras.Model.save_weights
def hooked(self, path, *args, **kwargs):
    original(self, path, *args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
keras.Model.save_weights = hooked
""",
    # the SavedModel is staged, not yet renamed into its version folder
    "during export": """
original = os.rename
def hooked(source, target, *args, **kwargs):
    if os.path.basename(str(target)).isdigit():
        os.kill(os.getpid(), signal.SIGKILL)
    return original(source, target, *args, **kwargs)
os.rename = hooked
""",
}

FAULT_RUN = ["run", "fake", "--epochs", "2", "--batch-size", "16", "--set", "train_examples=48",
             "--set", "eval_examples=16", "--samples", "0"]


def run_killed_at(hook: str, args, cwd):
    """`kerasapps -p kerasapps_fake ARGS` in a subprocess that kills itself where ``hook`` says."""
    code = "import os, signal, sys\n" + hook + "\nfrom kerasapps.cli import main\nmain(sys.argv[1:])\n"
    return subprocess.run([sys.executable, "-c", code, *FAKE, *args], cwd=cwd, capture_output=True, text=True,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **FAKE_PATH_ENV), timeout=600)


@pytest.mark.slow
@pytest.mark.parametrize("moment", list(KILL_HOOKS))
def test_kill_9_then_the_same_command_loses_nothing(tmp_path, moment):
    from kerasapps.training.engine import BestWeights

    killed = run_killed_at(KILL_HOOKS[moment], FAULT_RUN, tmp_path)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    if moment == "during export":  # killed with the model staged: no version visible, only the staging folder
        staged = os.listdir(tmp_path / "saved_models" / "fake")
        assert len(staged) == 1 and staged[0].startswith(".export-"), staged
    # The same command again, in this process (a fresh process would only add TensorFlow's start-up).
    again = invoke(FAULT_RUN, tmp_path)
    assert again.exit_code == 0, (again.output, again.exception)
    workdir = tmp_path / "runs" / "fake"
    metrics = json.loads((workdir / "metrics.json").read_text())
    # Every epoch once: no lost epoch, no "epoch 3/2".
    assert [h["epoch"] for h in metrics["history"]] == [1, 2]
    assert "3/2" not in again.stdout
    rows = (workdir / "training_log.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == ["1", "2"], rows
    # The best weights are those of the best epoch trained (the file records its epoch and value),
    # and they are what evaluate and export used.
    best = BestWeights.recorded(workdir / "best.weights.h5")
    values = [h["val_accuracy"] for h in metrics["history"]]
    assert best is not None and best["value"] >= max(values)
    if moment != "after best weights, before backup":  # there the kept epoch 1 may be the first try's
        assert best["value"] == max(values) and values[best["epoch"] - 1] == best["value"]
    # One whole, visible version; no staging or temporary file left.
    export_root = tmp_path / "saved_models" / "fake"
    assert sorted(os.listdir(export_root)) == ["1"]
    assert (export_root / "1" / "saved_model.pb").is_file()
    assert not [p for p in workdir.iterdir() if ".tmp" in p.name]


def test_export_goes_past_files_links_and_partial_folders_and_cleans_stale_staging(tmp_path, capsys):
    import keras
    import tensorflow as tf

    from kerasapps.serving.export import export_saved_model
    from kerasapps.task import Task

    class Probe(Task):
        name = "probe"

        def build_model(self):
            return keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])

        def serving_function(self, model):
            @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="x")])
            def serve(x):
                return {"y": model(x)}

            return serve

    task_dir = tmp_path / "probe"
    task_dir.mkdir()
    (task_dir / "1").write_text("not a model")  # a file at the next version number
    os.symlink(tmp_path / "nowhere", task_dir / "2")  # a dangling link
    (task_dir / "3").mkdir()  # a partial folder (no saved_model.pb)
    stale = task_dir / ".export-999999999-dead"  # a killed export's staging folder (no such process)
    (stale / "model").mkdir(parents=True)
    probe = Probe()
    path = export_saved_model(probe, probe.build_model(), tmp_path)
    assert path == task_dir / "4" and (path / "saved_model.pb").is_file()
    assert not stale.exists()
    assert sorted(os.listdir(task_dir)) == ["1", "2", "3", "4"]
    warnings = capsys.readouterr().err
    assert "probe/1 is a file or link" in warnings and "probe/3 is a folder without saved_model.pb" in warnings


def test_a_second_run_into_a_workdir_in_use_is_refused_and_a_killed_runs_lock_taken_over(tmp_path):
    # The holder is another process (a lock held by this one would not say "another run").
    hold = ("import sys, time\nfrom kerasapps.training.lock import hold_workdir_lock\n"
            "lock = hold_workdir_lock(sys.argv[1])\nprint('held', flush=True)\ntime.sleep(120)\n")
    workdir = tmp_path / "runs" / "fake"
    workdir.mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", hold, str(workdir)], stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, **FAKE_PATH_ENV))
    try:
        assert holder.stdout.readline().strip() == "held"
        refused = invoke(["train", "fake", *SMALL], tmp_path)
        assert_one_error(refused, f"is in use by another run (PID {holder.pid} on host")
        assert not (workdir / "backup").exists()  # refused before training
    finally:
        holder.kill()  # kill -9: the lock file stays behind, its lock does not
        holder.wait()
    ok = invoke(["train", "fake", *SMALL], tmp_path)
    assert ok.exit_code == 0, (ok.output, ok.exception)
    assert f"taking over the stale lock of a run that ended without releasing it (PID {holder.pid}" in ok.stderr
    assert (workdir / ".kerasapps.lock").read_text() == ""  # released at exit


FAULTY_PLUGINS = {
    # entry-point module name: (its source, what `kerasapps list` says about it)
    "hook_raises": ("import kerasapps\n@kerasapps.hookimpl\ndef kerasapps_register_tasks():\n"
                    "    raise RuntimeError('boom in hook')\n",
                    "its kerasapps_register_tasks hook failed: RuntimeError: boom in hook"),
    "exit_at_import": ("import sys\nsys.exit(3)\n", "it called sys.exit(3)"),
    "exit_in_hook": ("import sys, kerasapps\n@kerasapps.hookimpl\ndef kerasapps_register_datasets():\n"
                     "    sys.exit('bye')\n", "its kerasapps_register_datasets hook failed: it called sys.exit('bye')"),
    "missing_module": ("import kerasapps\n@kerasapps.hookimpl\ndef kerasapps_register_tasks():\n"
                       "    return [kerasapps.TaskSpec('ghost', 'no_such_module.task:Ghost', 'missing')]\n",
                       "task 'ghost' names module 'no_such_module.task', which cannot be found"),
    "exiting_task": ("import kerasapps\n@kerasapps.hookimpl\ndef kerasapps_register_tasks():\n"
                     "    return [kerasapps.TaskSpec('exiter', 'exiting_task_module:Task', 'exits at import')]\n",
                     None),
}


def test_plugin_faults_of_every_kind_are_named_and_the_other_tasks_keep_working(tmp_path):
    from test_registry import make_distribution

    for module, (body, _) in FAULTY_PLUGINS.items():
        make_distribution(tmp_path, module.replace("_", ""), module, body)
    (tmp_path / "exiting_task_module.py").write_text("import sys\nsys.exit(4)\n")
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), FAKE_PATH_ENV["PYTHONPATH"]])}
    listed = cli(*FAKE, "list", "--json", env=env, check=0)
    data = json.loads(listed.stdout)
    broken = {b["plugin"]: b["error"] for b in data["broken_plugins"]}
    for module, (_, error) in FAULTY_PLUGINS.items():
        if error:
            assert broken[module] == error
    tasks = {t["task"] for t in data["tasks"]}
    assert "fake" in tasks and "ghost" not in tasks
    assert "Traceback" not in listed.stderr
    for args, fragment in ((["info", "exiter"], "'exiter' cannot be loaded from exiting_task_module:Task: "
                                                "it called sys.exit(4)"),
                           (["run", "ghost"], "unknown task 'ghost'")):
        result = cli(*FAKE, *args, env=env, check=2)
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and fragment in errors[0] and "Traceback" not in result.stderr
    assert "fake:" in cli(*FAKE, "info", "fake", env=env, check=0).stdout


# -- dataset folders and predict ---------------------------------------------------------------------

def write_image_folder(root, classes=("a", "b"), per_class=6, size=20):
    """A tiny folder of the fake task (one folder per class): root/<class>/<i>.png."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(root / name / f"{i}.png")
    return root


FOLDER_RUN = ["--epochs", "1", "--batch-size", "4"]


def test_folder_links_leading_outside_are_refused_unless_allowed(tmp_path):
    data = write_image_folder(tmp_path / "data")
    secret = write_image_folder(tmp_path / "elsewhere", classes=("c",), per_class=1)
    os.symlink(secret / "c" / "0.png", data / "a" / "linked.png")
    os.symlink(data / "b" / "0.png", data / "a" / "inside.png")  # a link within the folder is fine
    result = invoke(["train", "fake", "--dataset", "folder:data", *FOLDER_RUN], tmp_path)
    assert_one_error(result, f"data/a/linked.png is a link to {secret / 'c' / '0.png'}, outside the dataset folder")
    assert "--set allow_links_outside_folder=true" in result.stderr
    assert not (tmp_path / "runs").exists()
    from kerasapps.data.folder_links import check_folder_links, links_leaving

    check_folder_links(data, allow=True)  # allowed: no error
    os.symlink(tmp_path / "elsewhere", data / "linked_folder")
    assert len(links_leaving(data)) == 2


def test_a_truncated_training_image_is_named(tmp_path):
    data = tmp_path / "data"
    write_image_folder(data / "train")
    write_image_folder(data / "test", per_class=2)
    good = (data / "train" / "b" / "3.png").read_bytes()
    (data / "train" / "b" / "3.png").write_bytes(good[: len(good) // 2])
    result = invoke(["train", "fake", "--dataset", "folder:data", *FOLDER_RUN], tmp_path)
    assert_one_error(result, "data/train/b/3.png could not be decoded (Invalid PNG data")
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors[0].startswith("error: data/train/b/3.png could not be decoded (Invalid PNG data"), errors


@pytest.fixture(scope="module")
def exported_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    result = kerasapps.run("fake", plugins=PLUGINS, workdir=root / "runs" / "fake", export_dir=root / "saved_models",
                           epochs=1, batch_size=16, train_examples=32, eval_examples=16, samples=0, verbose=0)
    assert result.export_path == root / "saved_models" / "fake" / "1"
    return result.export_path


def predict_inputs_for(folder):
    """One of each input the predict cases need, written under ``folder``."""
    import numpy as np
    from PIL import Image

    image = Image.fromarray(np.random.default_rng(1).integers(0, 255, (40, 40, 3), dtype=np.uint8))
    image.save(folder / "ok.png")
    image.save(folder / "ok.webp", format="WEBP")
    data = (folder / "ok.png").read_bytes()
    (folder / "truncated.png").write_bytes(data[: len(data) // 2])
    Image.new("L", (20000, 20000)).save(folder / "bomb.png")  # ~400 KB declaring 400 megapixels
    (folder / "a-file").write_text("x")


PREDICT_CASES = [
    ("truncated", ["truncated.png"], "truncated.png: the model could not read it (Invalid PNG data"),
    ("decompression bomb", ["bomb.png"], "bomb.png: 20000x20000 pixels is over the limit of 40000000"),
    ("out is a file", ["ok.png", "--out", "a-file"], "--out a-file is a file"),
    ("not an image", ["a-file"], "a-file is not a PNG, JPEG, GIF, BMP or WebP image"),
    ("missing", ["nowhere.png"], "cannot read nowhere.png: No such file or directory"),
]


@pytest.mark.slow
@pytest.mark.parametrize("args,fragment", [c[1:] for c in PREDICT_CASES], ids=[c[0] for c in PREDICT_CASES])
def test_predict_refuses_bad_inputs_with_one_line(exported_model, tmp_path, args, fragment):
    predict_inputs_for(tmp_path)
    assert_one_error(invoke(["predict", exported_model, *args], tmp_path), fragment)


@pytest.mark.slow
def test_predict_reads_webp_and_the_pixel_limit_is_configurable(exported_model, tmp_path, monkeypatch):
    predict_inputs_for(tmp_path)
    result = invoke(["predict", exported_model, "ok.webp", "ok.png", "--json"], tmp_path)
    assert result.exit_code == 0, result.output
    webp, png = (json.loads(line) for line in result.stdout.splitlines())
    assert webp["colour"] and png["colour"]
    # The limit is traced into the exported graph: export a model with a lower one and the same
    # 40x40 image (1600 pixels) is refused.
    root = exported_model.parents[2]
    monkeypatch.setenv("KERASAPPS_MAX_IMAGE_PIXELS", "1000")
    low_export = kerasapps.export("fake", plugins=PLUGINS, workdir=root / "runs" / "fake", export_dir=tmp_path / "low",
                                  verbose=0)
    assert low_export.export_path == tmp_path / "low" / "fake" / "1"
    # predict's own header check runs under the default limit here, so the graph's limit is what refuses.
    monkeypatch.delenv("KERASAPPS_MAX_IMAGE_PIXELS", raising=False)
    low = invoke(["predict", tmp_path / "low" / "fake" / "1", "ok.png"], tmp_path)
    assert_one_error(low, "image too large: its header declares more than 1000 pixels")


def test_predict_text_inputs_that_are_not_utf8_are_one_error(monkeypatch):
    import io

    from kerasapps.errors import UsageError
    from kerasapps.serving.predict import _text_items

    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"ok\n\xff\xfe bad\n")))
    with pytest.raises(UsageError, match="standard input is not valid UTF-8 text"):
        list(_text_items(["-"]))
    with pytest.raises(UsageError, match="is not valid UTF-8 text"):
        list(_text_items([b"caf\xe9".decode("utf-8", "surrogateescape")]))


@pytest.mark.parametrize("message", [
    "{{function_node __wrapped__IteratorGetNext_output_types_2_device_/job:localhost/replica:0/task:0/device:CPU:0}} "
    "Error in user-defined function passed to ParallelMapDatasetV2:2 transformation with iterator: "
    "Iterator::Root::Prefetch::ParallelMapV2: Invalid PNG data, size 60\n\t [[{{node decode_image/DecodeImage}}]]",
    "Graph execution error:\n\nDetected at node map/while/decode_image/DecodeImage defined at (most recent call "
    "last):\n<stack traces unavailable>\nInvalid PNG data, size 60\n\t [[{{node map/while/decode_image/DecodeImage}}]]",
])
def test_the_cause_of_a_tensorflow_error_is_its_decoder_message(message):
    from kerasapps.errors import tf_error_cause

    class Error(Exception):
        pass

    error = Error()
    error.message = message
    assert tf_error_cause(error) == "Invalid PNG data, size 60"
