r"""Leaky integrate-and-fire neurons: the one source of truth for their parameters.

A current-free ("box") LIF neuron, integrated with forward Euler at step ``dt``:

.. math::
    v_{t} &= v_{t-1} + \frac{dt}{\tau_{mem}} \left(v_{leak} - v_{t-1} + I_t\right) \\
    z_t &= \Theta(v_t - v_{th}) \\
    v_t &\leftarrow (1 - z_t)\, v_t + z_t\, v_{reset}

This is Norse's ``lif_box_feed_forward_step`` (Norse 1.1.0,
``norse/torch/functional/lif_box.py``), the SpikingJelly LIF of the SpikEmo reference with
``decay_input=True`` and a hard reset (τ = τ_mem/dt = 10 steps by default), and NIR's ``LIF``
node with ``r = 1`` (Pedersen et al., Nat. Commun. 2024). The same :class:`NeuronParams`
drives the Norse modules (:meth:`NeuronParams.norse`), the NIR export and the Lava mapping,
so the three cannot drift apart.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from norse.torch.functional.lif import LIFParameters
from norse.torch.functional.lif_box import LIFBoxParameters

from ..config import check_choice, check_range, require

SURROGATES = ("super", "triangle", "tanh", "circ", "heavi_erfc")


@dataclass(frozen=True)
class NeuronParams:
    """Parameters of a box LIF neuron.

    Fields:
        tau_mem: membrane time constant, seconds (τ_mem/dt = 10 steps by default).
        v_th: firing threshold (dimensionless potential).
        v_leak: resting potential the membrane decays to.
        v_reset: potential after a spike (hard reset).
        dt: integration step, seconds.
        surrogate: Norse surrogate-gradient method (one of ``SURROGATES``).
        alpha: surrogate sharpness (ignored by ``super`` in Norse 1.1.0).
    """

    tau_mem: float = 1e-2
    v_th: float = 1.0
    v_leak: float = 0.0
    v_reset: float = 0.0
    dt: float = 1e-3
    surrogate: str = "tanh"
    alpha: float = 2.0

    def __post_init__(self) -> None:
        check_choice("surrogate", self.surrogate, SURROGATES)
        check_range("dt", self.dt, gt=0)
        require(math.isfinite(self.tau_mem) and self.tau_mem >= self.dt, "tau_mem",
                f"a finite number ≥ dt ({self.dt})", self.tau_mem)
        for key in ("v_leak", "v_reset"):
            check_range(key, getattr(self, key))
        require(math.isfinite(self.v_th) and self.v_th > self.v_reset, "v_th",
                f"a finite number > v_reset ({self.v_reset})", self.v_th)
        check_range("alpha", self.alpha, gt=0)

    @property
    def decay(self) -> float:
        """dt/τ_mem: the fraction of the gap to (v_leak + I) closed per step."""
        return self.dt / self.tau_mem

    def norse(self) -> LIFBoxParameters:
        return LIFBoxParameters(
            tau_mem_inv=torch.as_tensor(1.0 / self.tau_mem),
            v_leak=torch.as_tensor(self.v_leak),
            v_th=torch.as_tensor(self.v_th),
            v_reset=torch.as_tensor(self.v_reset),
            method=self.surrogate,
            alpha=torch.as_tensor(self.alpha),
        )

    def norse_current_based(self, tau_syn_inv: torch.Tensor) -> LIFParameters:
        """Norse's current-based LIF (``lif_feed_forward_step``, NIR's ``CubaLIF``) with this
        membrane and synaptic decay rates ``tau_syn_inv`` (1/s; a scalar or one per neuron)."""
        box = self.norse()
        return LIFParameters(
            tau_syn_inv=tau_syn_inv, tau_mem_inv=box.tau_mem_inv, v_leak=box.v_leak, v_th=box.v_th,
            v_reset=box.v_reset, method=box.method, alpha=box.alpha,
        )

    def to_dict(self) -> dict:
        return asdict(self)
