"""The notebooks under docs/notebooks, executed in a real Jupyter kernel (nbclient), with small
settings put after each notebook's "parameters" cell (papermill's convention): a broken notebook
fails here, and what each one shows is checked."""

import pathlib
import re

import pytest

from tests.conftest import ROOT

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = ROOT / "docs" / "notebooks"
# Small settings per notebook: seconds on 2 cores.
TINY = {
    "quickstart": "settings = dict(epochs=1, train_examples=96, eval_examples=32, image_size=16)",
    "captioning": "settings = dict(epochs=1, train_examples=48, eval_examples=16, image_size=32, "
                  "embed_dim=16, lstm_units=16, cnn_filters=(8, 8), beam_size=1, batch_size=16)",
    "writing-a-plugin": "settings = dict(epochs=1, train_examples=64, eval_examples=32, image_size=16)",
    "serving": "settings = dict(epochs=1, train_examples=64, eval_examples=16, image_size=16)",
}


def execute(name: str, cwd: pathlib.Path):
    """Run ``docs/notebooks/NAME.ipynb`` in a fresh python3 kernel in ``cwd``; returns the executed notebook."""
    book = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    for cell in book.cells:  # outputs stored for the docs are not what this run shows
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    marked = [i for i, cell in enumerate(book.cells) if "parameters" in cell.metadata.get("tags", [])]
    assert len(marked) == 1, f"{name}: one cell tagged 'parameters'"
    injected = nbformat.v4.new_code_cell(TINY[name])
    injected.metadata["tags"] = ["injected-parameters"]
    book.cells.insert(marked[0] + 1, injected)
    nbclient.NotebookClient(book, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(cwd)}},
                            extra_arguments=["--HistoryManager.enabled=False"]).execute()
    nbformat.write(book, cwd / f"{name}.ipynb")  # what ran, to look at when a test fails
    return book


def outputs(cell, kind):
    """The text of a cell's outputs of one kind: "stream", "text/plain" or "text/html"."""
    parts = []
    for output in cell.outputs:
        if kind == "stream" and output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type in ("execute_result", "display_data") and kind in output.get("data", {}):
            parts.append(output.data[kind])
    return "".join(parts)


def cell_running(book, fragment):
    """The one code cell whose source holds ``fragment``."""
    cells = [cell for cell in book.cells if cell.cell_type == "code" and fragment in cell.source]
    assert len(cells) == 1, fragment
    return cells[0]


def test_notebooks_have_their_parameters_and_no_stale_errors():
    assert sorted(path.stem for path in NOTEBOOKS.glob("*.ipynb")) == sorted(TINY)
    for path in NOTEBOOKS.glob("*.ipynb"):
        book = nbformat.read(path, as_version=4)
        nbformat.validate(book)
        assert not [o for cell in book.cells if cell.cell_type == "code" for o in cell.outputs
                    if o.output_type == "error"], f"{path.name} was saved with an error in it"


def test_quickstart_trains_predicts_and_shows_pictures_inline(tmp_path):
    book = execute("quickstart", tmp_path)
    summary = outputs(cell_running(book, 'result = kerasapps.run("classification"'), "text/html")
    assert "accuracy (test)" in summary and "saved_models/classification/1" in summary
    # Progress in a kernel: Keras's bar, redrawn in place ("\\r"), with the epoch's metrics; no
    # TensorFlow log lines.
    progress = outputs(cell_running(book, 'result = kerasapps.run("classification"'), "stream")
    assert "val_accuracy: " in progress and "\r" in progress and "━" in progress, progress
    assert "INFO:tensorflow" not in progress and "Traceback" not in progress
    pictures = outputs(cell_running(book, "predictor.predict("), "text/html")
    assert pictures.count("<img") == 4 and "data:image/png;base64," in pictures
    pairs = outputs(cell_running(book, "CLASS_NAMES[scene"), "text/plain")
    assert pairs.count("(") == 4  # four (predicted, true) pairs
    assert re.fullmatch(r"0\.\d+|1\.0", outputs(cell_running(book, "kerasapps.evaluate("), "text/plain"))
    assert "error: Invalid value for '--epochs': 0 is not in the range x>=1" in outputs(cell_running(book, "epochs=0"), "stream")
    assert (tmp_path / "saved_models" / "classification" / "1" / "saved_model.pb").is_file()


def test_captioning_notebook_captions_new_scenes(tmp_path):
    book = execute("captioning", tmp_path)
    summary = outputs(cell_running(book, 'result = kerasapps.run("captioning"'), "text/html")
    assert "bleu" in summary.lower() and "cider" in summary.lower()
    pictures = outputs(cell_running(book, "captions = kerasapps.load"), "text/html")
    assert pictures.count("<img") == 4 and pictures.count("caption") >= 4
    assert outputs(cell_running(book, "reference:"), "stream").count("model:") == 4


def test_a_task_class_from_a_notebook_cell_trains_exports_and_checks_its_fields(tmp_path):
    book = execute("writing-a-plugin", tmp_path)
    assert "saved_models/colour/1" in outputs(cell_running(book, "kerasapps.run(ColourTask, workdir"), "text/html")
    assert outputs(cell_running(book, "kerasapps.load(result.export_path)"), "text/html").count("<img") == 4
    assert "error: units: expected a value >= 1" in outputs(cell_running(book, "units=0"), "stream")


def test_serving_notebook_calls_the_rest_api(tmp_path):
    book = execute("serving", tmp_path)
    assert "'AVAILABLE'" in outputs(cell_running(book, "status = get(base)"), "text/plain")
    assert "'image_bytes': 'DT_STRING'" in outputs(cell_running(book, '["inputs"]'), "text/plain")
    answers = outputs(cell_running(book, "predictions = json.load"), "text/plain")
    assert answers.count("(") == 3, answers  # three (predicted, true, score) rows
    refused = outputs(cell_running(book, "bad = urllib"), "stream")
    assert refused.startswith("400 {'error': ") and "Traceback" not in refused, refused


def test_interrupting_the_kernel_mid_run_leaves_a_run_that_calling_run_again_resumes(tmp_path):
    """The kernel's interrupt button (SIGINT to the kernel) during training, then the same call again."""
    import time

    from jupyter_client.manager import start_new_kernel

    manager, client = start_new_kernel(kernel_name="python3", cwd=str(tmp_path))
    printed = []

    def run(code, timeout=300):
        reply = client.execute_interactive(code, timeout=timeout, output_hook=lambda msg: printed.append(
            msg["content"].get("text", "")) if msg["msg_type"] == "stream" else None)
        return reply["content"]

    try:
        assert run(f"import sys; sys.path.insert(0, {str(ROOT / 'tests' / 'plugins')!r})\nimport kerasapps\n"
                   "settings = dict(plugins=['kerasapps_fake'], workdir='run', export_dir='saved_models', epochs=4, "
                   "train_examples=2000, image_size=16, verbose=2)")["status"] == "ok"
        # stop_on_error=False: the kernel must not abort the next request for this one's KeyboardInterrupt.
        client.execute("result = kerasapps.run('fake', **settings)", stop_on_error=False)
        log = tmp_path / "run" / "training_log.csv"
        deadline = time.monotonic() + 240
        while not (log.exists() and len(log.read_text().splitlines()) >= 2) and time.monotonic() < deadline:
            time.sleep(0.2)  # until epoch 1 is logged (and backed up)
        manager.interrupt_kernel()
        interrupted = client.get_shell_msg(timeout=120)["content"]
        assert interrupted["status"] == "error" and interrupted["ename"] == "KeyboardInterrupt", interrupted
        assert not list(tmp_path.glob("saved_models/**/saved_model.pb"))  # stopped before the end: nothing exported
        printed.clear()
        again = run("result = kerasapps.run('fake', **settings)\nprint([h['epoch'] for h in result.history])")
        assert again["status"] == "ok", again
        output = "".join(printed)
        assert "resuming fake" in output and "[1, 2, 3, 4]" in output, output
        assert (tmp_path / "saved_models" / "fake" / "1" / "saved_model.pb").is_file()
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
