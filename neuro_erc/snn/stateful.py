r"""Neuron populations whose state runs on from one call to the next (for the streaming model).

Norse's steps, forward Euler at step ``dt``, in Norse's order of operations (RESEARCH §4):

* box LIF, ``lif_box_feed_forward_step`` (NIR ``LIF``, r = 1):

  .. math:: v \leftarrow v + \tfrac{dt}{\tau_{mem}}(v_{leak} - v + x);\quad z = \Theta(v - v_{th});\quad
            v \leftarrow (1 - z)\,v + z\,v_{reset}

* current-based LIF, ``lif_feed_forward_step`` (NIR ``CubaLIF``): the synaptic current is
  *not* reset by spikes, only decays:

  .. math:: i \leftarrow i + x;\quad v \leftarrow v + \tfrac{dt}{\tau_{mem}}(v_{leak} - v + i);\quad
            i \leftarrow (1 - \tfrac{dt}{\tau_{syn}})\,i;\quad z = \Theta(v - v_{th});\quad v \leftarrow \mathrm{reset}

* box leaky integrator, ``li_box_feed_forward_step`` (NIR ``LI``, r = 1), whose output is its membrane:

  .. math:: v \leftarrow v + \tfrac{dt}{\tau_{mem}}(v_{leak} - v + x)

:func:`run_steps` folds such a step over the leading (time) axis of its input from a given
state. Every step is elementwise, so running a sequence in chunks, each from the state the
last one left, gives the same outputs bit for bit as running it at once.

A population's ``forward(current [S, B, N], real [S, B] | None, state)`` takes ``state``, a
dict that maps each population (the module object) to its Norse state:

* ``state=None``: the whole sequence from rest (training, batch evaluation); the box LIF then
  uses the project's hand-written backward (:func:`~neuro_erc.snn.lif.box_lif_sequence`);
* a dict (``{}`` is at rest): the populations start from their entries and write their final
  state back into it — one utterance window at a time, for streaming.

``real`` (True at real steps) zeroes the outputs at padding and leaves it out of
``last_rate``. Time constants are given as a *memory* of ``h`` windows of ``T`` steps
(:func:`tau_for_memory`), so that what a population remembers of the last utterance does not
change with T.
"""
from __future__ import annotations

from typing import Callable

import torch
from norse.torch.functional.leaky_integrator_box import LIBoxParameters, LIBoxState, li_box_feed_forward_step
from norse.torch.functional.lif import LIFFeedForwardState, lif_feed_forward_step
from norse.torch.functional.lif_box import LIFBoxFeedForwardState, lif_box_feed_forward_step

from .lif import SpikeSumModule, box_lif_sequence
from .neuron import NeuronParams


def tau_for_memory(windows: torch.Tensor | float, steps: int, dt: float) -> torch.Tensor:
    r"""The time constant τ (seconds) whose forward-Euler decay keeps :math:`e^{-1/h}` of a
    value over one window of ``steps`` steps, for a memory of ``h = windows`` windows:

    .. math:: (1 - dt/\tau)^{T} = e^{-1/h} \iff \tau = \frac{dt}{1 - e^{-1/(hT)}} \;(> dt)

    Computed in float64 (the caller casts); one τ per element of ``windows``.
    """
    h = torch.as_tensor(windows, dtype=torch.float64)
    return dt / -torch.expm1(-1.0 / (h * steps))


def run_steps(step: Callable, inputs: torch.Tensor, state, params, dt: float) -> tuple[torch.Tensor, object]:
    """Fold a Norse ``step(x_t, state, params, dt) -> (y_t, state)`` over ``inputs`` [S, ...]."""
    outputs = []
    for x in inputs:
        y, state = step(x, state, params, dt)
        outputs.append(y)
    return torch.stack(outputs), state


class _Population(SpikeSumModule):
    """What every population shares: the padding mask and the firing-rate log."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size
        self._counts: tuple[torch.Tensor, torch.Tensor] | None = None  # (spikes, real steps) of the last call
        self.last_spike_sum: torch.Tensor | None = None  # differentiable, for the spike budget (snn.rates)

    @property
    def last_rate(self) -> float | None:
        """Spikes per neuron per real step in the last call (None before any, and for integrators)."""
        if self._counts is None:
            return None
        spikes, steps = self._counts
        return float(spikes / (steps * self.size)) if steps > 0 else 0.0

    @property
    def last_neuron_steps(self) -> torch.Tensor | None:
        """Neuron-steps at real steps in the last call (a tensor; None before any)."""
        return None if self._counts is None else self._counts[1] * self.size

    def _masked(self, out: torch.Tensor, real: torch.Tensor | None, spiking: bool = True) -> torch.Tensor:
        if real is not None:
            out = out * real[..., None].to(out.dtype)
        if spiking:  # counted as tensors: a float() here would cost a sync per call when streaming
            steps = real.sum() if real is not None else torch.tensor(out[..., 0].numel())
            self.last_spike_sum = out.sum()
            self._counts = (self.last_spike_sum.detach(), steps)
        return out


class BoxLIF(_Population):
    """Box LIF neurons (:class:`NeuronParams`): current [S, B, N] → spikes [S, B, N]."""

    def __init__(self, params: NeuronParams, size: int):
        super().__init__(size)
        self.params = params

    def forward(self, current: torch.Tensor, real: torch.Tensor | None, state: dict | None) -> torch.Tensor:
        if state is None:
            return self._masked(box_lif_sequence(current, self.params), real)
        p = self.params.norse()
        start = state.get(self) or LIFBoxFeedForwardState(v=torch.full_like(current[0], self.params.v_leak))
        spikes, state[self] = run_steps(lif_box_feed_forward_step, current, start, p, self.params.dt)
        return self._masked(spikes, real)

    def extra_repr(self) -> str:
        p = self.params
        return f"{self.size}, tau_mem={p.tau_mem}, v_th={p.v_th}, dt={p.dt}"


class CubaLIF(_Population):
    """Current-based LIF neurons with one synaptic time constant per neuron: current → spikes.

    ``tau_syn`` [N] (seconds) are fixed constants (buffers, not parameters: NIR stores one per
    neuron). Autograd runs through Norse's step.
    """

    def __init__(self, params: NeuronParams, tau_syn: torch.Tensor):
        super().__init__(tau_syn.numel())
        self.params = params
        self.register_buffer("tau_syn", tau_syn.double(), persistent=False)  # as given: what the export writes
        self.register_buffer("tau_syn_inv", (1.0 / self.tau_syn).float(), persistent=False)

    def forward(self, current: torch.Tensor, real: torch.Tensor | None, state: dict | None) -> torch.Tensor:
        p = self.params.norse_current_based(self.tau_syn_inv)
        start = (state or {}).get(self) or LIFFeedForwardState(
            v=torch.full_like(current[0], self.params.v_leak), i=torch.zeros_like(current[0]))
        spikes, end = run_steps(lif_feed_forward_step, current, start, p, self.params.dt)
        if state is not None:
            state[self] = end
        return self._masked(spikes, real)

    def extra_repr(self) -> str:
        tau = (1.0 / self.tau_syn_inv).tolist()
        return f"{self.size}, tau_syn={min(tau):.4g}..{max(tau):.4g}, tau_mem={self.params.tau_mem}, v_th={self.params.v_th}"


class LeakyIntegrator(_Population):
    """Box leaky integrators, τ = ``tau`` seconds, v_leak = 0: current [S, B, N] → membrane [S, B, N]."""

    def __init__(self, size: int, tau: float, dt: float):
        super().__init__(size)
        self.tau, self.dt = tau, dt

    def forward(self, current: torch.Tensor, real: torch.Tensor | None, state: dict | None) -> torch.Tensor:
        p = LIBoxParameters(tau_mem_inv=torch.as_tensor(1.0 / self.tau), v_leak=torch.as_tensor(0.0))
        start = (state or {}).get(self) or LIBoxState(v=torch.zeros_like(current[0]))
        v, end = run_steps(li_box_feed_forward_step, current, start, p, self.dt)
        if state is not None:
            state[self] = end
        return self._masked(v, real, spiking=False)

    def extra_repr(self) -> str:
        return f"{self.size}, tau={self.tau:.4g}, dt={self.dt}"

