r"""Synaptic currents that every backend computes to the same float32 number: exact sums, rounded once.

The exported network defines the current of neuron i as the float32 rounding of the real sum

.. math::
    I_i = \mathrm{fl32}\Big(b_i + \sum_j W_{ij}\, c_j\Big)

(W, b float32; c_j the input). Norse (:class:`~.norse_ref.ExactLinear`), the numpy simulator and
Lava's float ``Sparse`` + ``BoxLIF`` all sum in float64 and round once. Why that gives one
number whatever the order of the sum — BLAS blocking, Lava's one synapse copy per residual term
(``Σ_terms W·s_term`` where Norse computes ``W·Σ_terms s_term``), the InPort adding the outputs
of several ``Sparse`` processes:

When the inputs are spikes or spike counts, c_j is an integer with 0 ≤ c_j ≤ C (C = the number
of spike trains summed into the input). Every product W_ij·c_j, the bias, and so every partial
sum in any order is an integer multiple of

.. math::
    u_i = \min\{\mathrm{ulp}_{32}(x) : x \in \{W_{i1}, W_{i2}, \dots, b_i\},\ x \ne 0\}

(a power of two), bounded in magnitude by :math:`M_i = |b_i| + C \sum_j |W_{ij}|`. A float64
holds every multiple of u_i up to :math:`2^{53} u_i`, so if :math:`M_i \le 2^{53} u_i` every
float64 operation of the sum is exact, and the float64 result is the real sum: rounding it once
to float32 gives :math:`I_i` on every backend, in every order.

The condition fails only for a weight (or bias) whose last bit lies below the float64 resolution
of its row, i.e. :math:`\mathrm{ulp}_{32}(w) \cdot 2^{53} < M_i` (about :math:`|w| < 2^{-29} M_i`).
:func:`flush_subresolution` sets exactly those entries to 0 — the only change the export makes
to the folded weights; it moves a current by less than :math:`2^{-29} M_i` per flushed entry,
about :math:`2^{-5}` of the float32 rounding error of a float32 sum over the same row. Afterwards
the condition holds for every row (flushing only lowers :math:`M_i`).

Analog inputs (the encoder's x) are arbitrary float32 numbers: their products have up to 48
significant bits and their sum is *not* exact in float64. That current is therefore computed
once, on the host (Norse), and handed to the simulator and to Lava as the input current.
"""
from __future__ import annotations

import numpy as np

F32, F64 = np.float32, np.float64
FLOAT64_SIGNIFICAND_BITS = 53


def row_magnitude(weight: np.ndarray, bias: np.ndarray, max_input: int) -> np.ndarray:
    """:math:`M_i = |b_i| + C \\sum_j |W_{ij}|`: the largest partial sum of row i (``max_input`` = C)."""
    return np.abs(bias.astype(F64)) + max_input * np.abs(weight.astype(F64)).sum(axis=1)


def _subresolution(values: np.ndarray, magnitude: np.ndarray) -> np.ndarray:
    """Nonzero float32 ``values`` whose ulp is below ``magnitude / 2^53`` (broadcast per row)."""
    ulp = np.spacing(np.abs(values.astype(F32))).astype(F64)
    return (values != 0) & (ulp * 2.0**FLOAT64_SIGNIFICAND_BITS < magnitude)


def exactly_summable(weight: np.ndarray, bias: np.ndarray, max_input: int) -> np.ndarray:
    """Per row: is every float64 sum of ``b_i + Σ_j W_ij c_j`` (0 ≤ c_j ≤ ``max_input``) exact?"""
    magnitude = row_magnitude(weight, bias, max_input)
    return ~(_subresolution(weight, magnitude[:, None]).any(axis=1) | _subresolution(bias, magnitude))


def flush_subresolution(weight: np.ndarray, bias: np.ndarray, max_input: int) -> tuple[np.ndarray, np.ndarray, int]:
    """(W, b, n): float32 copies with the n entries that break :func:`exactly_summable` set to 0."""
    magnitude = row_magnitude(weight, bias, max_input)
    w_flush, b_flush = _subresolution(weight, magnitude[:, None]), _subresolution(bias, magnitude)
    w, b = weight.astype(F32), bias.astype(F32)
    w[w_flush], b[b_flush] = 0, 0
    return w, b, int(w_flush.sum() + b_flush.sum())
