"""The Starlette application: TF Serving's REST API over a Repository, limits, and the demo page.

Routes (TF Serving's, plus two of kerasapps' own):

- ``GET /v1/models/NAME[/versions/N|/labels/L]``: version status
- ``GET /v1/models/NAME[/versions/N|/labels/L]/metadata``: signature_def map
- ``POST /v1/models/NAME[/versions/N|/labels/L]:predict``: ``{"instances": ...}`` or ``{"inputs": ...}``
- ``GET /v1/models`` (kerasapps): every model with its versions, for the demo page
- ``GET /``: the demo page

Example::

    app = create_app(ServerSettings(root="saved_models"))
    uvicorn.run(app, host="127.0.0.1", port=8501)
"""

from __future__ import annotations

import asyncio
import json
import re
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from importlib import resources

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from kerasapps.serving.server.batching import Batcher, batch_rows
from kerasapps.data.images import NotAnImage, image_dimensions
from kerasapps.serving.server.repository import Repository
from kerasapps.serving.server.tensors import BadRequest, encode_predict_response, parse_json_body, parse_predict_body


@dataclass
class ServerSettings:
    """What ``kerasapps serve`` is told: where the models are, limits and batching."""

    root: str
    labels: dict = field(default_factory=dict)  # {(model, label): version}
    max_body_bytes: int = 10 * 2**20
    max_image_pixels: int = 4096 * 4096
    batch_window_ms: float = 5.0
    max_batch_size: int = 32


class PayloadTooLarge(Exception):
    """The body is over the size limit (HTTP 413)."""


_MODEL_PATH = re.compile(r"^(?P<name>[^/:]+)(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
                         r"(?P<tail>/metadata|:predict|:classify|:regress)?$")


def _json(content, status: int = 200) -> Response:
    """A JSON response as TF Serving writes it."""
    # TF Serving writes NaN/Infinity as bare tokens; Starlette's JSONResponse refuses them.
    return Response(json.dumps(content, allow_nan=True, ensure_ascii=False), status_code=status, media_type="application/json")


def _error(message: str, status: int) -> Response:
    return _json({"error": message}, status)


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it is known to exceed ``limit`` (never read whole)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(int(declared))
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(size)
        chunks.append(chunk)
    return b"".join(chunks)


def _check_images(inputs: dict, max_pixels: int) -> list:
    """Read every ``*_bytes`` input's image header; BadRequest for non-images or too many pixels.

    Returns the image sizes, which become part of the batching key.
    """
    sizes = []
    for name, array in inputs.items():
        if not name.endswith("_bytes"):
            continue
        for index, data in enumerate(array.ravel()):
            try:
                width, height, kind = image_dimensions(data)
            except NotAnImage as exc:
                raise BadRequest(f"input {name!r}[{index}]: {exc}") from None
            if width * height > max_pixels:
                raise BadRequest(f"input {name!r}[{index}]: a {kind} image of {width}x{height} pixels is over the "
                                 f"limit of {max_pixels} pixels (--max-image-pixels)")
            sizes.append((width, height))
    return sizes


def _batch_key(inputs: dict, image_sizes: list) -> tuple:
    """Requests batch together only when this key is equal (see kerasapps.serving.server.batching)."""
    words = sorted({len(x.split()) for name, a in inputs.items() if a.dtype == object and not name.endswith("_bytes")
                    for x in a.ravel()})
    inner = tuple((name, a.shape[1:]) for name, a in sorted(inputs.items()))
    return inner, tuple(sorted(set(image_sizes))), tuple(words)


def create_app(settings: ServerSettings) -> Starlette:
    """The ASGI application serving ``settings.root`` (see the module docstring)."""
    repository = Repository(settings.root, settings.labels)

    async def resolve(request: Request):
        match = _MODEL_PATH.match(request.path_params["rest"])
        if not match:
            raise LookupError(f"Malformed request: {request.method} {request.url.path}")
        number = int(match["version"]) if match["version"] else None
        return match, await repository.version(match["name"], number, match["label"])

    async def model_endpoint(request: Request) -> Response:
        try:
            match = _MODEL_PATH.match(request.path_params["rest"])
            tail = match["tail"] if match else None
            if request.method == "GET" and tail is None and match:
                return await status(match)
            if request.method == "GET" and tail == "/metadata":
                _, version = await resolve(request)
                return _json({"model_spec": {"name": version.name, "signature_name": "", "version": str(version.number)},
                              "metadata": {"signature_def": {"signature_def": version.signature_def_map()}}})
            if request.method == "POST" and tail == ":predict":
                return await predict(request)
            if request.method == "POST" and tail in (":classify", ":regress"):
                raise BadRequest(f"{tail[1:]} is not supported: kerasapps models have predict signatures only")
            raise LookupError(f"Malformed request: {request.method} {request.url.path}")
        except BadRequest as exc:
            return _error(str(exc), 400)
        except LookupError as exc:
            return _error(str(exc.args[0]), 404)
        except PayloadTooLarge as exc:
            return _error(f"request body of {exc.args[0]} bytes or more is over the limit of "
                          f"{settings.max_body_bytes} bytes (--max-body-mb)", 413)
        except Exception as exc:  # a bug or a request nobody foresaw: answer it, keep serving the rest
            return _error(f"internal error: {type(exc).__name__}: {exc}", 500)

    async def status(match) -> Response:
        versions = await repository.wait_loaded(match["name"])
        if match["label"]:
            if (match["name"], match["label"]) not in settings.labels:
                raise LookupError(f"Unrecognized servable version label: {match['label']}")
            wanted = settings.labels[(match["name"], match["label"])]
        else:
            wanted = int(match["version"]) if match["version"] else None
        chosen = [v for v in versions if wanted is None or v.number == wanted]
        if not chosen:
            what = f"Specific({match['name']}, {wanted})" if wanted is not None else f"Latest({match['name']})"
            raise LookupError(f"Could not find any versions of model {match['name']}" if wanted is None
                              else f"Servable not found for request: {what}")
        return _json({"model_version_status": [v.status() for v in reversed(chosen)]})

    async def predict(request: Request) -> Response:
        _, version = await resolve(request)
        body = parse_json_body(await _read_body(request, settings.max_body_bytes))
        signature_name = body.get("signature_name", "serving_default") if isinstance(body, dict) else "serving_default"
        if signature_name not in version.signatures:
            raise BadRequest(f"Serving signature name: \"{signature_name}\" not found in signature def "
                             f"(the model has {', '.join(sorted(version.signatures))})")
        signature = version.signatures[signature_name]
        specs = signature.structured_input_signature[1]
        inputs, row_format = parse_predict_body(body, specs)
        image_sizes = _check_images(inputs, settings.max_image_pixels)
        if signature_name not in version.batchers:
            version.batchers[signature_name] = Batcher(signature, settings.batch_window_ms / 1000, settings.max_batch_size)
        batcher = version.batchers[signature_name]
        try:
            outputs, rows = await batcher.submit(inputs, batch_rows(inputs, specs), _batch_key(inputs, image_sizes))
        except Exception as exc:  # TensorFlow refused the values: the client's problem, say which
            message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            raise BadRequest(f"the model could not run on these inputs: {message.strip().splitlines()[0]}") from None
        response = _json(encode_predict_response(outputs, row_format))
        response.headers["X-Batch-Rows"] = str(rows)  # rows in the call that served it (kerasapps' own header)
        return response

    async def list_models(request: Request) -> Response:
        names = repository.refresh()
        await asyncio.gather(*(v.ready for v in repository.versions.values()))
        models = []
        for name in sorted(names):
            versions = repository.model_versions(name)
            models.append({"name": name, "versions": [v.status() for v in reversed(versions)],
                           "task": next((v.assets_metadata().get("task") for v in reversed(versions)), None)})
        return _json({"models": models})

    async def demo_page(request: Request) -> Response:
        return HTMLResponse(resources.files("kerasapps.serving.server").joinpath("static/index.html").read_text("utf-8"))

    async def demo_script(request: Request) -> Response:
        script = resources.files("kerasapps.serving.server").joinpath("static/demo.js").read_text("utf-8")
        return Response(script, media_type="text/javascript")

    @asynccontextmanager
    async def lifespan(app):
        repository.refresh()
        await asyncio.gather(*(v.ready for v in repository.versions.values()))
        app.state.repository = repository
        yield

    return Starlette(routes=[
        Route("/", demo_page),
        Route("/demo.js", demo_script),
        Route("/v1/models", list_models),
        Route("/v1/models/{rest:path}", model_endpoint, methods=["GET", "POST"]),
    ], lifespan=lifespan)
