"""Server-side batching: concurrent requests to one model version run as one signature call.

Requests wait at most ``window_s`` for company, up to ``max_batch_size`` rows. Only requests
whose inputs have the same shape key run together (same image sizes, same text word counts,
same inner dimensions), because a signature may pad a mixed batch to its largest member
(segmentation pads masks, translation pads sentences) and then a row's output would depend
on its neighbours. A request that cannot be split by rows runs alone. Each batch runs in a
worker thread, so the event loop keeps accepting requests meanwhile, and requests that arrive
while a batch runs form the next one.

Example::

    batcher = Batcher(signature, window_s=0.005, max_batch_size=32)
    outputs, rows_in_call = await batcher.submit(inputs, rows, key)    # {"label": array([...]), ...}, 32
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np


@dataclass
class _Request:
    inputs: dict
    rows: int | None  # None: cannot be batched with others
    key: object
    future: asyncio.Future


def _call(signature, inputs: dict) -> dict:
    import tensorflow as tf

    outputs = signature(**{name: tf.constant(value) for name, value in inputs.items()})
    return {name: tensor.numpy() for name, tensor in outputs.items()}


def batch_rows(inputs: dict, specs: dict) -> int | None:
    """Rows in a request if every input is batched along dimension 0 with the same length, else None."""
    sizes = {value.shape[0] if value.ndim else None for value in inputs.values()}
    batched = all(spec.shape.rank and spec.shape[0] is None for spec in specs.values())
    size = sizes.pop() if len(sizes) == 1 else None
    return size if batched and size else None


class Batcher:
    """Collects requests for one signature and runs them in batches (see the module docstring)."""

    def __init__(self, signature, window_s: float, max_batch_size: int):
        self.signature = signature
        self.window_s = window_s
        self.max_batch_size = max_batch_size
        self.queue: asyncio.Queue[_Request] = asyncio.Queue()
        self.worker = None
        self.batch_sizes: list[int] = []  # rows per signature call, for tests and the benchmark

    async def submit(self, inputs: dict, rows: int | None, key) -> tuple[dict, int]:
        """Run ``inputs`` (``rows`` along dimension 0, or None: alone); return its own outputs and
        the number of rows in the signature call that computed them."""
        if self.worker is None:
            self.worker = asyncio.ensure_future(self._work())
        request = _Request(inputs, rows, key, asyncio.get_running_loop().create_future())
        await self.queue.put(request)
        return await request.future

    async def _collect(self) -> list[_Request]:
        first = await self.queue.get()
        batch, rows = [first], first.rows or self.max_batch_size
        deadline = asyncio.get_running_loop().time() + self.window_s
        while rows < self.max_batch_size:
            timeout = deadline - asyncio.get_running_loop().time()
            try:
                request = self.queue.get_nowait() if timeout <= 0 else await asyncio.wait_for(self.queue.get(), timeout)
            except (asyncio.TimeoutError, asyncio.QueueEmpty):
                break
            batch.append(request)
            rows += request.rows or self.max_batch_size
        return batch

    async def _work(self) -> None:
        while True:
            batch = await self._collect()
            groups: dict[object, list[_Request]] = {}
            for request in batch:
                key = (request.key, request.rows is not None) if request.rows is not None else id(request)
                groups.setdefault(key, []).append(request)
            for group in groups.values():
                await self._run(group)

    async def _run(self, group: list[_Request]) -> None:
        try:
            if len(group) == 1:
                results = [await asyncio.to_thread(_call, self.signature, group[0].inputs)]
            else:
                results = await asyncio.to_thread(self._run_together, group)
            batch_size = sum(r.rows or 1 for r in group)
            self.batch_sizes.append(batch_size)
        except Exception as exc:  # the requests get the error; the worker lives on
            for request in group:
                if not request.future.done():
                    request.future.set_exception(exc)
            return
        for request, result in zip(group, results):
            if not request.future.done():
                request.future.set_result((result, batch_size))

    def _run_together(self, group: list[_Request]) -> list[dict]:
        names = group[0].inputs.keys()
        joined = {name: np.concatenate([r.inputs[name] for r in group]) for name in names}
        outputs = _call(self.signature, joined)
        total = sum(r.rows for r in group)
        if any(value.ndim == 0 or value.shape[0] != total for value in outputs.values()):
            return [_call(self.signature, r.inputs) for r in group]  # outputs not per row: run one by one
        bounds = np.cumsum([0] + [r.rows for r in group])
        return [{name: value[bounds[i]:bounds[i + 1]] for name, value in outputs.items()} for i in range(len(group))]
