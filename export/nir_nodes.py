r"""NIR 1.0.8 nodes for the pieces of a spiking core, in the (channels, utterances) layout.

Each factory is one node kind with its formula. Time is discrete here: the whole graph is
updated once per step ``dt`` in topological order (Norse's semantics), edges into a node sum.

* :func:`lif_node` — Norse's box LIF, forward Euler at ``dt`` (RESEARCH §4):
  ``v ← v + dt/τ·(v_leak − v + r·I)``, ``z = Θ(v − v_threshold)``, ``v ← v_reset`` where
  z = 1. With ``τ = 1/τ_mem⁻¹`` (in float64, so that ``1/τ`` gives Norse's float32
  ``τ_mem⁻¹`` back) and ``r = 1`` this *is* Norse's step; ``norse.torch.to_nir`` writes
  ``dt/τ_mem⁻¹`` instead and drops ``v_reset``.
* :func:`and_node` — AND of two binary spike inputs: ``Θ(a + b − 1.5)``, a ``Threshold`` at
  1.5 on the sum of two edges (the product of binary spikes; RESEARCH §5).
* :func:`pointwise_conv` — a Linear applied to every utterance with shared weights:
  ``Conv1d`` with kernel 1, ``y[:, l] = W·x[:, l] + b``.
* :func:`utterance_sum` — ``y[c] = Σ_l x[c, l]``: ``Conv1d`` with kernel L and a
  channel-diagonal weight (groups=1: nir 1.0.8 mis-sizes grouped Conv1d).
* :func:`utterance_broadcast` — ``y[c, l] = x[c]``: the same diagonal ``Conv1d`` over a
  (D, 1) input with padding L − 1, whose output length is 1 + 2(L − 1) − L + 1 = L.
"""
from __future__ import annotations

import nir
import numpy as np

from neuro_erc.errors import ExportError
from neuro_erc.snn.neuron import NeuronParams

AND_THRESHOLD = 1.5


def lif_node(params: NeuronParams, shape: tuple[int, ...]) -> nir.LIF:
    """The NIR LIF node of box LIF neurons with ``params``, one per element of ``shape``."""
    p = params.norse()  # Norse's float32 parameters: the model's own numbers
    full = lambda value: np.full(shape, float(value), dtype=np.float64)  # noqa: E731
    return nir.LIF(
        tau=full(1.0 / float(p.tau_mem_inv)),
        r=full(1.0),
        v_leak=full(p.v_leak),
        v_threshold=full(p.v_th),
        v_reset=full(p.v_reset),
    )


def params_from_lif(node: nir.LIF, dt: float, surrogate: str = "tanh", alpha: float = 2.0) -> NeuronParams:
    """Inverse of :func:`lif_node` for a node whose parameters are uniform and r = 1."""
    fields = {"tau": node.tau, "r": node.r, "v_leak": node.v_leak, "v_threshold": node.v_threshold, "v_reset": node.v_reset}
    values = {}
    for name, arr in fields.items():
        arr = np.asarray(arr)
        if arr.size == 0 or not np.all(arr == arr.flat[0]):
            raise ExportError(f"LIF parameter {name} is not uniform over the node; cannot map to NeuronParams")
        values[name] = float(arr.flat[0])
    if values["r"] != 1.0:
        raise ExportError(f"LIF with r={values['r']} is not a box LIF of this package (needs r = 1)")
    return NeuronParams(tau_mem=values["tau"], v_th=values["v_threshold"], v_leak=values["v_leak"],
                        v_reset=values["v_reset"], dt=dt, surrogate=surrogate, alpha=alpha)


def and_node(shape: tuple[int, ...]) -> nir.Threshold:
    return nir.Threshold(threshold=np.full(shape, AND_THRESHOLD, dtype=np.float64))


def _conv(weight: np.ndarray, bias: np.ndarray, input_length: int, padding: int) -> nir.Conv1d:
    return nir.Conv1d(input_shape=input_length, weight=np.asarray(weight, dtype=np.float32), stride=1,
                      padding=padding, dilation=1, groups=1, bias=np.asarray(bias, dtype=np.float32))


def pointwise_conv(weight: np.ndarray, bias: np.ndarray, length: int) -> nir.Conv1d:
    """Per-utterance Linear ``W [out, in]``, ``b [out]`` over ``length`` utterances."""
    return _conv(np.asarray(weight)[:, :, None], bias, length, padding=0)


def _diagonal(channels: int, length: int) -> np.ndarray:
    weight = np.zeros((channels, channels, length), dtype=np.float32)
    weight[np.arange(channels), np.arange(channels), :] = 1.0
    return weight


def utterance_sum(channels: int, length: int) -> nir.Conv1d:
    return _conv(_diagonal(channels, length), np.zeros(channels), length, padding=0)


def utterance_broadcast(channels: int, length: int) -> nir.Conv1d:
    return _conv(_diagonal(channels, length), np.zeros(channels), 1, padding=length - 1)
