"""`kerasapps serve`: TF Serving's REST API against a real uvicorn server on 127.0.0.1.

The models are the fake plugin's (tests/plugins/kerasapps_fake.py): `fake` takes images and
answers a colour, its scores and a PNG (`preview_bytes`); `fake-text` takes text and answers one
output. Tiny exports (two training steps, in this process) are made once and shared by every test.
"""

import base64
import concurrent.futures
import functools
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys

import httpx
import numpy as np
import pytest
import tensorflow as tf

import kerasapps
from tests.conftest import ROOT, cli

sys.path.insert(0, str(ROOT / "tests" / "plugins"))  # the fake plugin, loaded in-process with plugins=[...]
SMALL = {"epochs": 1, "steps_per_epoch": 2, "batch_size": 8, "train_examples": 32, "eval_examples": 16, "samples": 0,
         "verbose": 0}


def tiny_export(root: pathlib.Path, task: str, **settings) -> pathlib.Path:
    """Train ``task`` for two steps and export it under ``root/saved_models``; returns the version folder."""
    return kerasapps.run(task, plugins=["kerasapps_fake"], workdir=root / "runs" / task,
                         export_dir=root / "saved_models", **{**SMALL, **settings}).export_path


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """saved_models/{fake,fake-text}/1, and beside it other/fake/1: the image model trained from another seed."""
    root = tmp_path_factory.mktemp("serve")
    tiny_export(root, "fake")
    tiny_export(root, "fake-text")
    tiny_export(root / "other", "fake", seed=7)
    return root / "saved_models"


def png_bytes(height=20, width=30, seed=0) -> bytes:
    return tf.io.encode_png(np.random.RandomState(seed).randint(0, 255, (height, width, 3)).astype("uint8")).numpy()


def b64(data: bytes) -> dict:
    return {"b64": base64.b64encode(data).decode("ascii")}


# `import tensorflow` imports Keras when it is installed (to register its optimizers) but goes on
# without it; with None in sys.modules Keras cannot be imported at all, so the servers below prove
# that serving needs none of it.
WITHOUT_KERAS = "import sys; sys.modules['keras'] = None; from kerasapps.cli import main; main()"


class Server:
    """`kerasapps serve ROOT --port 0 ...` in a subprocess without Keras; ``url`` once it is ready."""

    def __init__(self, root, *options):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        self.process = subprocess.Popen([sys.executable, "-c", WITHOUT_KERAS, "serve", str(root), "--port", "0", *options],
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        lines = []
        for line in self.process.stdout:
            lines.append(line)
            if line.startswith("serving "):
                self.url = line.rsplit(" at ", 1)[1].strip().rstrip("/")
                self.ready_line = line
                break
        else:
            raise AssertionError("server did not start:\n" + "".join(lines))
        self.client = httpx.Client(base_url=self.url, timeout=120)

    def post(self, path, body):
        return self.client.post(path, content=body if isinstance(body, bytes) else json.dumps(body))

    def close(self):
        self.client.close()
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()


@pytest.fixture(scope="module")
def server(exports, tmp_path_factory):
    root = tmp_path_factory.mktemp("served") / "saved_models"
    shutil.copytree(exports, root)
    shutil.copytree(exports / "fake" / "1", root / "live" / "1")  # the model whose versions change
    running = Server(root, "--label", "fake:stable=1", "--max-body-mb", "1", "--max-image-pixels", "1000000")
    running.root = root
    yield running
    running.close()


@functools.lru_cache(maxsize=None)
def _serving_default(model_dir: str):
    return tf.saved_model.load(model_dir).signatures["serving_default"]


def in_process(exports, task, **inputs):
    """serving_default of ``exports/task/1`` called in this process, as numpy arrays."""
    serve = _serving_default(str(exports / task / "1"))
    return {name: value.numpy() for name, value in serve(**{k: tf.constant(v) for k, v in inputs.items()}).items()}


# -- TF Serving's documented shapes -------------------------------------------------------------
@pytest.mark.slow
def test_status_is_tf_servings_get_model_status_response(server):
    response = server.client.get("/v1/models/fake")
    assert response.status_code == 200
    assert response.json() == {"model_version_status": [
        {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}]}
    assert server.client.get("/v1/models/fake/versions/1").json()["model_version_status"][0]["version"] == "1"
    assert server.client.get("/v1/models/fake/labels/stable").status_code == 200
    missing = server.client.get("/v1/models/nosuchmodel")
    assert missing.status_code == 404 and "nosuchmodel" in missing.json()["error"]


@pytest.mark.slow
def test_metadata_is_the_signature_def_map_as_tf_serving_writes_it(server):
    body = server.client.get("/v1/models/fake/metadata").json()
    assert body["model_spec"] == {"name": "fake", "signature_name": "", "version": "1"}
    signature = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert signature["method_name"] == "tensorflow/serving/predict"
    assert signature["inputs"]["image_bytes"]["dtype"] == "DT_STRING"
    assert signature["inputs"]["image_bytes"]["tensor_shape"] == {"dim": [{"size": "-1", "name": ""}], "unknown_rank": False}
    assert set(signature["outputs"]) == {"colour", "scores", "preview_bytes"}
    assert signature["outputs"]["scores"]["dtype"] == "DT_FLOAT"


@pytest.mark.slow
def test_row_and_columnar_predictions_equal_serving_default_in_process(server, exports):
    images = [png_bytes(seed=0), png_bytes(24, 24, seed=1)]
    expected = in_process(exports, "fake", image_bytes=images)
    rows = server.post("/v1/models/fake:predict", {"instances": [b64(i) for i in images]})
    assert rows.status_code == 200, rows.text
    predictions = rows.json()["predictions"]  # several outputs: one object per row
    assert [p["colour"] for p in predictions] == [x.decode() for x in expected["colour"]]
    np.testing.assert_allclose([p["scores"] for p in predictions], expected["scores"], rtol=1e-5, atol=1e-6)
    # Row format with named inputs, and the columnar format, give the same values.
    named = server.post("/v1/models/fake:predict", {"instances": [{"image_bytes": b64(i)} for i in images]})
    assert named.json() == rows.json()
    columns = server.post("/v1/models/fake/versions/1:predict", {"inputs": {"image_bytes": [b64(i) for i in images]}})
    outputs = columns.json()["outputs"]
    assert outputs["colour"] == [p["colour"] for p in predictions]
    np.testing.assert_allclose(outputs["scores"], expected["scores"], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_bytes_outputs_come_back_as_b64_and_single_outputs_without_their_name(server, exports):
    image = png_bytes(32, 32, seed=2)
    expected = in_process(exports, "fake", image_bytes=[image])
    prediction = server.post("/v1/models/fake:predict", {"instances": [b64(image)]}).json()["predictions"][0]
    assert set(prediction["preview_bytes"]) == {"b64"}
    assert base64.b64decode(prediction["preview_bytes"]["b64"]) == expected["preview_bytes"][0]
    assert tf.io.decode_png(expected["preview_bytes"][0]).shape == (16, 16, 3)
    # One output (fake-text): "predictions" is the list of values, "outputs" the value itself.
    texts = ["a big red circle", "a small blue square on the left of a green cross"]
    expected = [x.decode() for x in in_process(exports, "fake-text", text=texts)["colour"]]
    assert server.post("/v1/models/fake-text:predict", {"instances": texts}).json() == {"predictions": expected}
    assert server.post("/v1/models/fake-text:predict", {"inputs": texts}).json() == {"outputs": expected}
    assert server.post("/v1/models/fake-text/labels/stable:predict", {"inputs": texts}).status_code == 404


# -- bad requests: 400 with a clear message, and the server lives on -----------------------------
@pytest.mark.parametrize("body, status, words", [
    (b"{\"instances\": [", 400, "malformed JSON"),
    ({"instances": [{"image": b64(b"x")}]}, 400, "unknown input 'image'; the model takes image_bytes"),
    ({"instances": [b64(b"hello, not an image")]}, 400, "not a PNG, JPEG, GIF, WebP or BMP image"),
    ({"instances": [{"b64": "***"}]}, 400, "not valid base64"),
    ({"instances": [1, 2]}, 400, "expected a string"),
    ({"examples": []}, 400, "exactly one of \"instances\""),
    ({"instances": [b64(png_bytes())], "signature_name": "nope"}, 400, "\"nope\" not found"),
    (b'{"instances": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400, "nests arrays or objects too deeply"),
])
@pytest.mark.slow
def test_bad_requests_get_400_with_a_clear_message(server, body, status, words):
    response = server.post("/v1/models/fake:predict", body)
    assert response.status_code == status and words in response.json()["error"], response.text


@pytest.mark.parametrize("depth", [100_000, 900, 65])
def test_deeply_nested_bodies_are_bad_requests_not_recursion_errors(depth):
    from kerasapps.serving.server.tensors import BadRequest, parse_json_body, parse_predict_body

    nested = b"[" * depth + b"]" * depth
    specs = {"image_bytes": tf.TensorSpec([None], tf.string)}
    with pytest.raises(BadRequest, match="too deeply|lists deep"):
        parse_predict_body(parse_json_body(b'{"instances": [' + nested + b"]}"), specs)
    # 64 dimensions is as deep as an input can be: refused for its shape, not its depth.
    with pytest.raises(BadRequest, match="not a rectangular array|does not fit"):
        parse_predict_body(parse_json_body(b'{"inputs": ' + b"[" * 64 + b"]" * 64 + b"}"), specs)


@pytest.mark.slow
def test_huge_image_is_refused_from_its_header_before_decoding(server):
    # A real 20000x20000 PNG (one colour, zlib-compressed rows: ~1 MB) would take 1.2 GB decoded.
    import zlib

    width = height = 20000
    row = b"\x00" + b"\x00" * (3 * width)
    data = zlib.compress(row * 2000, 9)  # the first 2000 rows are enough to make the point; header says 20000
    chunk = lambda kind, payload: (len(payload).to_bytes(4, "big") + kind + payload
                                   + zlib.crc32(kind + payload).to_bytes(4, "big"))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", width.to_bytes(4, "big") + height.to_bytes(4, "big") + b"\x08\x02\x00\x00\x00")
           + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    response = server.post("/v1/models/fake:predict", {"instances": [b64(png)]})
    assert response.status_code == 400
    assert "20000x20000 pixels is over the limit of 1000000 pixels" in response.json()["error"]


@pytest.mark.slow
def test_body_over_the_limit_is_refused_without_reading_it(server):
    # Declared 50 MB: the answer comes after the headers, before the client sends the body.
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as connection:
        connection.sendall(b"POST /v1/models/fake:predict HTTP/1.1\r\nHost: x\r\n"
                           b"Content-Type: application/json\r\nContent-Length: 52428800\r\n\r\n{\"instances\": [")
        answer = b""
        while b"}" not in answer.partition(b"\r\n\r\n")[2]:
            answer += connection.recv(65536) or b"}"
        answer = answer.decode()
    assert answer.startswith("HTTP/1.1 413") and "over the limit of 1048576 bytes" in answer
    # A streamed body without a length is cut off as soon as it passes the limit.
    chunks = (b"x" * 65536 for _ in range(800))  # 50 MB if it were all read
    try:
        response = server.client.post("/v1/models/fake:predict", content=chunks)
        assert response.status_code == 413 and "over the limit" in response.json()["error"]
    except httpx.TransportError:
        pass  # the server closed the connection after answering: also a refusal
    assert server.client.get("/v1/models/fake").status_code == 200


@pytest.mark.parametrize("kind", ["PNG", "JPEG", "GIF", "WEBP", "BMP"])
def test_image_dimensions_are_read_from_the_header_of_each_format(kind):
    import io

    from kerasapps.data.images import NotAnImage, image_dimensions

    image = pytest.importorskip("PIL.Image", reason="Pillow writes the sample files").new("RGB", (37, 23), (200, 30, 30))
    encoded = io.BytesIO()
    image.save(encoded, kind, **({"lossless": True} if kind == "WEBP" else {}))
    assert image_dimensions(encoded.getvalue())[:2] == (37, 23)
    if kind == "WEBP":
        lossy = io.BytesIO()
        image.save(lossy, "WEBP", quality=50)
        assert image_dimensions(lossy.getvalue())[:2] == (37, 23)
    with pytest.raises(NotAnImage):
        image_dimensions(encoded.getvalue()[:8] if kind != "BMP" else b"BM")


# -- batching: concurrent requests run together and get the same answers --------------------------
@pytest.mark.slow
def test_concurrent_sentences_of_different_lengths_get_their_own_answers(server, exports):
    # A sequence model pads a batch to its longest sentence, which can change its output for the
    # shorter ones: the server batches only sentences of equal word count together.
    texts = ["a red circle", "a big blue square on the left", "a small green cross above a big red triangle",
             "a cyan circle", "the yellow square"] * 2
    expected = [in_process(exports, "fake-text", text=[t])["colour"][0].decode() for t in texts]
    with concurrent.futures.ThreadPoolExecutor(len(texts)) as pool:
        answers = list(pool.map(lambda t: server.post("/v1/models/fake-text:predict", {"instances": [t]}).json(), texts))
    assert [a["predictions"][0] for a in answers] == expected


@pytest.mark.slow
def test_concurrent_requests_get_the_same_outputs_as_one_at_a_time(server):
    images = [png_bytes(20, 30, seed=i) for i in range(12)] + [png_bytes(16, 16, seed=i) for i in range(4)]
    alone = [server.post("/v1/models/fake:predict", {"instances": [b64(i)]}).json() for i in images]
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        responses = list(pool.map(lambda i: server.post("/v1/models/fake:predict", {"instances": [b64(i)]}), images))
    together = [r.json() for r in responses]
    assert max(int(r.headers["X-Batch-Rows"]) for r in responses) > 1  # some ran together
    for one, many in zip(alone, together):
        assert one["predictions"][0]["colour"] == many["predictions"][0]["colour"]
        assert one["predictions"][0]["preview_bytes"] == many["predictions"][0]["preview_bytes"]
        np.testing.assert_allclose(one["predictions"][0]["scores"], many["predictions"][0]["scores"], atol=1e-6)


def test_batcher_runs_concurrent_requests_as_one_call_and_splits_the_rows():
    import asyncio

    from kerasapps.serving.server.batching import Batcher

    calls = []

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def double(x):
        calls.append(1)  # traced once per new shape
        return {"y": 2 * x, "n": tf.fill(tf.shape(x), tf.size(x))}

    async def main():
        batcher = Batcher(double, window_s=0.05, max_batch_size=8)
        answers = await asyncio.gather(*(batcher.submit({"x": np.array([i, i + 0.5], np.float32)}, 2, "k")
                                         for i in range(6)))
        assert [rows for _, rows in answers] == [8, 8, 8, 8, 4, 4]
        return batcher.batch_sizes, [outputs for outputs, _ in answers]

    sizes, results = asyncio.run(main())
    assert sizes == [8, 4]  # max_batch_size rows, then the rest
    for i, result in enumerate(results):
        assert result["y"].tolist() == [2 * i, 2 * i + 1]
    assert [r["n"][0] for r in results] == [8, 8, 8, 8, 4, 4]


# -- versions ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_new_version_is_served_without_restart_and_incomplete_ones_never(server, exports):
    live = server.root / "live"
    (live / ".export-abc123" / "model").mkdir(parents=True)  # the core's staging folder, mid-write
    (live / "7").mkdir()
    shutil.copy(exports / "fake" / "1" / "saved_model.pb", live / "7")  # no variables/
    status = server.client.get("/v1/models/live").json()["model_version_status"]
    assert [s["version"] for s in status] == ["1"]
    assert server.client.get("/v1/models/live/metadata").json()["model_spec"]["version"] == "1"
    staging = live / ".export-def456"
    shutil.copytree(exports.parent / "other" / "saved_models" / "fake" / "1", staging)  # other weights
    os.rename(staging, live / "2")  # as kerasapps export does: renamed into place whole
    assert server.client.get("/v1/models/live/metadata").json()["model_spec"]["version"] == "2"
    image = png_bytes()
    new = in_process(exports.parent / "other" / "saved_models", "fake", image_bytes=[image])["scores"][0]
    old = in_process(exports, "fake", image_bytes=[image])["scores"][0]
    assert not np.allclose(new, old)
    prediction = server.post("/v1/models/live:predict", {"instances": [b64(image)]}).json()["predictions"][0]
    np.testing.assert_allclose(prediction["scores"], new, atol=1e-6)  # the new version answered
    answer = server.post("/v1/models/live/versions/1:predict", {"instances": [b64(image)]}).json()["predictions"][0]
    np.testing.assert_allclose(answer["scores"], old, atol=1e-6)
    assert [s["version"] for s in server.client.get("/v1/models/live").json()["model_version_status"]] == ["2", "1"]


# -- the server process imports no Keras ---------------------------------------------------------
@pytest.mark.slow
def test_server_serves_without_importing_keras_or_plugins(exports):
    """In process, with Starlette's TestClient: a request served, and no Keras or plugin module loaded."""
    code = f"""
import sys
sys.modules["keras"] = None
import base64, json
import numpy as np, tensorflow as tf
from starlette.testclient import TestClient
from kerasapps.serving.server import ServerSettings, create_app
png = tf.io.encode_png(np.zeros((8, 8, 3), np.uint8)).numpy()
with TestClient(create_app(ServerSettings(root={str(exports)!r}))) as client:
    r = client.post("/v1/models/fake:predict", json={{"instances": [{{"b64": base64.b64encode(png).decode()}}]}})
    assert r.status_code == 200, r.text
    assert client.get("/").status_code == 200 and "demo.js" in client.get("/").text
    print(json.dumps(sorted(m for m, module in sys.modules.items() if module is not None and (
        m.split(".")[0] in ("keras", "tf_keras") or m.startswith("kerasapps_")))))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_serve_refuses_a_missing_folder_and_a_bad_label(tmp_path):
    assert cli("serve", tmp_path / "nope", check=2).returncode == 2
    err = cli("serve", tmp_path, "--label", "fake-stable", check=2).stderr
    assert "error: --label expects MODEL:LABEL=VERSION" in err


def test_serve_says_when_its_port_is_taken(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        err = cli("serve", tmp_path, "--port", taken.getsockname()[1], check=2).stderr
    assert err.strip().splitlines()[-1].startswith("error: cannot listen on 127.0.0.1:")


# -- the demo page, in a real headless browser ---------------------------------------------------
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")
@pytest.mark.slow
def test_demo_page_predicts_an_image_and_a_text_in_chromium(server, exports, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    picture = tmp_path / "picture.png"
    picture.write_bytes(png_bytes(24, 24, seed=5))
    colour = in_process(exports, "fake", image_bytes=[picture.read_bytes()])["colour"][0].decode()
    text_colour = in_process(exports, "fake-text", text=["a big red circle"])["colour"][0].decode()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(server.url + "/")
            page.wait_for_selector("body[data-ready=true]")
            assert set(page.locator("#model option").all_inner_texts()) >= {"fake", "fake-text", "live"}
            page.select_option("#model", "fake")
            page.wait_for_selector("body[data-model=fake]")
            page.set_input_files("#in-image_bytes", str(picture))
            page.click("#run")
            assert page.wait_for_selector(".output-colour").inner_text() == colour
            preview = page.wait_for_selector(".output-preview_bytes img")
            assert page.evaluate("(img) => img.complete && img.naturalWidth", preview) == 16  # the PNG output decoded
            page.select_option("#model", "fake-text")
            page.wait_for_selector("body[data-model=fake-text]")
            page.fill("#in-text", "a big red circle")
            page.click("#run")
            assert page.wait_for_selector(".output-colour").inner_text() == text_colour
            # A file that is no image gets the server's message on the page.
            page.select_option("#model", "fake")
            page.wait_for_selector("body[data-model=fake]")
            (tmp_path / "notes.png").write_text("not an image")
            page.set_input_files("#in-image_bytes", str(tmp_path / "notes.png"))
            page.click("#run")
            assert "not a PNG, JPEG, GIF, WebP or BMP image" in page.wait_for_selector(".error").inner_text()
        finally:
            browser.close()


# -- the load benchmark --------------------------------------------------------------------------
@pytest.mark.slow
def test_serve_load_benchmark_writes_and_replaces_its_section(exports, tmp_path):
    import re

    out = tmp_path / "RESULTS.md"
    out.write_text("# kerasapps benchmarks\n\n## Training throughput\n\n<!-- section: serve_load -->\n"
                   "## Serving under load\nan older run\n<!-- end: serve_load -->\n")
    command = [sys.executable, "-m", "benchmarks.serve_load", "--root", str(exports), "--tasks", "fake",
               "--clients", "4", "--seconds", "2", "--baseline-seconds", "1", "--out", str(out)]
    result = subprocess.run(command, cwd=pathlib.Path(__file__).parents[1], capture_output=True, text=True,
                            timeout=300, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert result.returncode == 0, result.stderr[-3000:]
    text = out.read_text()
    assert text.startswith("# kerasapps benchmarks") and text.count("## Serving under load") == 1
    assert "an older run" not in text  # replaced, not appended
    served = re.search(r"\| fake \| served, 4 clients, batched \| ([\d.]+) \| ([\d.]+) \| \*\*([\d.]+)\*\*", text)
    assert served and 0 < float(served[1]) <= float(served[2]) and float(served[3]) > 0
    assert re.search(r"\| fake \| in process, batch 32 \| [\d.]+ \| [\d.]+ \| [\d.]+ \| 32 \|", text)
