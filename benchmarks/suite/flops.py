"""Model FLOPs from the layers (an exact count of the matrix work) and the CPU's peak.

Counted: the multiply-adds of Conv2D, Conv2DTranspose, Dense, LSTM/GRU (also inside
Bidirectional) and dot-product / additive attention, 2 FLOPs each. Not counted:
element-wise work (activations, batch norm, pooling, the optimizer), which is small
beside the matrix work but is memory-bound on a CPU. Training is taken as 3x the
forward pass (forward + gradients w.r.t. activations and weights).
"""

from __future__ import annotations

import math
import os
import re
import subprocess


def _prod(dims) -> float:
    return float(math.prod(int(d) for d in dims))


def _shape(tensor):
    return tuple(tensor.shape)


def _rnn_flops(cell_layer, in_shape) -> float:
    gates = {"LSTM": 4, "GRU": 3, "SimpleRNN": 1}[type(cell_layer).__name__]
    steps, features = in_shape[1], in_shape[-1]
    units = cell_layer.units
    return 2.0 * steps * gates * units * (features + units)


def _node_flops(layer, inputs, outputs) -> float:
    kind = type(layer).__name__
    if kind == "Conv2D":
        out = _shape(outputs[0])
        k_h, k_w = layer.kernel_size
        c_in = _shape(inputs[0])[-1] // getattr(layer, "groups", 1)
        return 2.0 * _prod(out[1:3]) * out[3] * k_h * k_w * c_in
    if kind == "Conv2DTranspose":
        inp = _shape(inputs[0])
        k_h, k_w = layer.kernel_size
        return 2.0 * _prod(inp[1:4]) * k_h * k_w * layer.filters
    if kind == "Dense":
        inp = _shape(inputs[0])
        return 2.0 * _prod(inp[1:-1]) * inp[-1] * layer.units
    if kind in ("LSTM", "GRU", "SimpleRNN"):
        return _rnn_flops(layer, _shape(inputs[0]))
    if kind == "Bidirectional":
        return _rnn_flops(layer.forward_layer, _shape(inputs[0])) + _rnn_flops(layer.backward_layer, _shape(inputs[0]))
    if kind in ("Attention", "AdditiveAttention"):
        query, value = _shape(inputs[0]), _shape(inputs[1])
        scores = 2.0 * query[1] * value[1] * query[-1]
        if kind == "AdditiveAttention":
            scores *= 1.5  # add, tanh, multiply by the scale vector
        return scores + 2.0 * query[1] * value[1] * value[-1]
    return 0.0


def forward_flops(model) -> float:
    """Forward-pass FLOPs per example of a functional Keras model with static shapes."""
    total = 0.0
    for nodes in model._nodes_by_depth.values():
        for node in nodes:
            layer = node.operation
            if node.is_input or layer is None:
                continue
            if hasattr(layer, "_nodes_by_depth"):  # a nested functional model
                total += forward_flops(layer)
                continue
            inputs = [t for t in node.input_tensors]
            outputs = [t for t in node.output_tensors]
            if any(None in _shape(t)[1:] for t in inputs + outputs):
                raise ValueError(f"{layer.name}: unknown dimension; give the model fixed input shapes")
            total += _node_flops(layer, inputs, outputs)
    return total


def cpu_peak() -> dict:
    """Peak fp32 FLOP/s of this CPU as cores x clock x FLOPs per cycle, with what was assumed."""
    info = {"model": "unknown", "cores": os.cpu_count() or 1, "ghz": None, "flags": set()}
    try:
        with open("/proc/cpuinfo") as f:
            text = f.read()
        info["model"] = re.search(r"model name\s*:\s*(.*)", text).group(1).strip()
        info["flags"] = set(re.search(r"flags\s*:\s*(.*)", text).group(1).split())
        mhz = re.search(r"cpu MHz\s*:\s*([\d.]+)", text)
        if mhz:
            info["ghz"] = float(mhz.group(1)) / 1000
    except (OSError, AttributeError):
        pass
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        threads = re.search(r"Thread\(s\) per core:\s*(\d+)", lscpu)
        info["threads_per_core"] = int(threads.group(1)) if threads else 1
        bogo = re.search(r"BogoMIPS:\s*([\d.]+)", lscpu)
        if info["ghz"] is None and bogo:
            info["ghz"] = float(bogo.group(1)) / 2000  # BogoMIPS = 2 x TSC MHz on x86
    except (OSError, subprocess.SubprocessError):
        info["threads_per_core"] = 1
    flags = info.pop("flags")
    if "avx512f" in flags:
        lanes, isa = 16, "AVX-512"
    elif "avx2" in flags or "avx" in flags:
        lanes, isa = 8, "AVX2"
    else:
        lanes, isa = 4, "SSE"
    info["amx_bf16"] = "amx_bf16" in flags
    fma_units = 2 if "fma" in flags or "avx512f" in flags else 1
    per_cycle = lanes * 2 * fma_units  # 2 FLOPs per FMA
    physical = info["cores"] // max(1, info.get("threads_per_core", 1))
    ghz = info["ghz"] or 2.0
    info.update(
        isa=isa, physical_cores=physical, flops_per_cycle=per_cycle,
        peak_flops=physical * ghz * 1e9 * per_cycle,
        assumption=(f"{physical} cores x {ghz:.2f} GHz x {per_cycle} fp32 FLOPs/cycle "
                    f"({isa}: {lanes} lanes x 2 (FMA) x {fma_units} FMA units); "
                    "clock from cpuinfo (else BogoMIPS/2, the TSC rate), no turbo; AMX/bf16 not used in float32"),
    )
    if info["amx_bf16"]:  # Intel's figure for AMX: 1,024 bf16 FLOPs per cycle per core
        info["peak_flops_bf16"] = physical * ghz * 1e9 * 1024
        info["assumption_bf16"] = f"{physical} cores x {ghz:.2f} GHz x 1,024 bf16 FLOPs/cycle (AMX tiles)"
    return info
