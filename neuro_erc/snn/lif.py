r"""A layer of box LIF neurons run over T time steps (multi-step), with Norse's neuron model.

Forward, per time step ``t`` (Norse's ``lif_box_feed_forward_step``, called as is):

.. math::
    v^{dec}_t &= v_{t-1} + a\,(I_t + v_{leak} - v_{t-1}), \qquad a = dt/\tau_{mem} \\
    z_t &= \Theta(v^{dec}_t - v_{th}) \\
    v_t &= (1 - z_t)\,v^{dec}_t + z_t\,v_{reset}, \qquad v_{-1} = v_{leak}

Backward is backpropagation through time of exactly those equations (Norse does not detach
the reset), with Norse's surrogate :math:`\sigma'` for :math:`\partial z/\partial v`:

.. math::
    \bar z_t &= g^z_t + g^v_t\,(v_{reset} - v^{dec}_t) \\
    g^{dec}_t &= g^v_t\,(1 - z_t) + \sigma'(v^{dec}_t - v_{th})\,\bar z_t \\
    g^I_t &= a\,g^{dec}_t, \qquad g^v_{t-1} = g^{dec}_t - a\,g^{dec}_t

Why a hand-written backward: letting autograd record Norse's step saves ~12 tensors per step
and runs ~10x slower on CPU than the step itself. Here the forward runs Norse's step without
recording and saves only the input current (a free view when the current is constant over T)
and the membrane potential at the start of every segment of ``S`` steps. The backward
recomputes one segment at a time (:math:`v^{dec}` with the same floating-point operations as
Norse's step, so the spikes recomputed are the forward's), in a small reused buffer, then runs
the recursion above in place. ``tests/test_snn_lif.py`` checks spikes and gradients against
autograd through Norse's step, for every surrogate.
"""
from __future__ import annotations

import ctypes
import functools
import math

import torch
from norse.torch.functional.lif_box import LIFBoxFeedForwardState, lif_box_feed_forward_step
from torch import nn

from .neuron import NeuronParams

_SEGMENT_BYTES = 16 << 20  # recompute buffers per backward segment: small enough for malloc to reuse


@functools.cache
def keep_step_buffers() -> bool:
    """Stop glibc from returning the per-step temporaries to the OS after every time step.

    Norse's step allocates ~10 temporaries of one step's size ([L·B, D] floats, 1.5–6 MB at
    MELD size) and frees them. glibc trims the top of its heap whenever more than
    M_TRIM_THRESHOLD is free there (by default twice a dynamic mmap threshold of a few MB), so
    every step faults its pages in again: measured 3.1 ms → 1.4 ms per Norse step with this
    fix on the project's 2-core machines (~5 µs per 4 KiB page fault). We fix the mmap
    threshold at glibc's maximum (32 MiB; larger blocks are still mmapped and returned at
    once) and let 128 MiB stay free at the heap top. Process-wide and idempotent; a no-op
    (returns False) without glibc's ``mallopt``. Called when a :class:`SpikingCore` is built.
    """
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(m_mmap_threshold, 32 << 20)) and bool(mallopt(m_trim_threshold, 128 << 20))


def surrogate_derivative_(x: torch.Tensor, method: str, alpha: float) -> tuple[torch.Tensor, float]:
    r"""Overwrite ``x`` with :math:`\sigma'(x)/c` and return ``(x, c)``, where :math:`\sigma'` is
    the derivative Norse 1.1.0's ``threshold`` uses in its backward for ``method``
    (``norse/torch/functional/threshold.py``, ``superspike.py``); the constant ``c`` is left to
    the caller to fold into its next operation.

    super: :math:`1/(|x|+1)^2` (alpha ignored, as in Norse); triangle: :math:`\alpha\max(0, 1-|x|)`;
    tanh: :math:`1-\tanh^2(\alpha x) = 4s(1-s)`, :math:`s = \mathrm{sigmoid}(2\alpha x)` (cheaper
    on CPU than tanh); circ: :math:`\alpha^3/(\alpha^2+x^2)^{3/2}`;
    heavi_erfc: :math:`2e^{-\alpha^2 x^2}/\sqrt\pi`.
    """
    if method == "tanh":
        x.mul_(2 * alpha).sigmoid_()
        return x.addcmul_(x, x, value=-1), 4.0
    if method == "super":
        return x.abs_().add_(1).pow_(-2), 1.0
    if method == "triangle":
        return x.abs_().sub_(1).clamp_max_(0), -alpha
    if method == "circ":
        return x.square_().add_(alpha**2).pow_(-1.5), alpha**3
    if method == "heavi_erfc":
        return x.square_().mul_(-(alpha**2)).exp_(), 2 / math.sqrt(math.pi)
    raise ValueError(f"no surrogate derivative for method {method!r}")


class _BoxLIFSequence(torch.autograd.Function):
    """Box LIF over the leading (time) axis of ``current``; see the module docstring.

    ``mask`` (broadcastable to one step of ``current``, or None) zeroes spikes and their
    gradients at padding.
    """

    @staticmethod
    def forward(ctx, current: torch.Tensor, mask: torch.Tensor | None, params: NeuronParams) -> torch.Tensor:
        T, step_bytes = current.shape[0], current[0].numel() * current.element_size()
        seg = max(1, min(T, _SEGMENT_BYTES // (2 * step_bytes)))
        p = params.norse()
        spikes = torch.empty(current.shape, dtype=current.dtype, device=current.device)
        state = LIFBoxFeedForwardState(v=torch.full_like(current[0], params.v_leak))
        starts = []
        for t in range(T):
            if t % seg == 0:
                starts.append(state.v)  # Norse returns a new v each step: no copy needed
            z, state = lif_box_feed_forward_step(current[t], state, p, params.dt)
            if mask is None:
                spikes[t] = z
            else:
                torch.mul(z, mask, out=spikes[t])
        ctx.save_for_backward(current, mask, *starts)
        ctx.params, ctx.seg = params, seg
        return spikes

    @staticmethod
    def backward(ctx, grad_spikes: torch.Tensor):
        current, mask, *starts = ctx.saved_tensors
        params: NeuronParams = ctx.params
        p = params.norse()
        a = params.dt * p.tau_mem_inv  # the same 0-d tensors and products as Norse's step
        T, seg, alpha = current.shape[0], ctx.seg, float(p.alpha)
        like = dict(dtype=current.dtype, device=current.device)
        grad_current = torch.empty(current.shape, **like)
        v_dec, fired = torch.empty((2, seg, *current.shape[1:]), **like)
        v, x, z_bar, g_v = (torch.empty(current.shape[1:], **like) for _ in range(4))
        g_v.zero_()
        for k in reversed(range(len(starts))):
            t0, t1 = k * seg, min(T, (k + 1) * seg)
            v.copy_(starts[k])
            for t in range(t0, t1):  # v^dec_t = v + a (I_t + v_leak - v), bit for bit as in Norse
                d, z = v_dec[t - t0], fired[t - t0]
                torch.sub(current[t] + p.v_leak if params.v_leak else current[t], v, out=x)
                torch.add(v, x.mul_(a), out=d)
                torch.gt(d, p.v_th, out=z)
                torch.addcmul(d, d, z, value=-1, out=v)  # (1 - z) v^dec, exactly
                if params.v_reset:
                    v.add_(z * p.v_reset)
            for t in reversed(range(t0, t1)):
                d, z = v_dec[t - t0], fired[t - t0]
                g_z = grad_spikes[t] if mask is None else grad_spikes[t] * mask
                torch.addcmul(g_z, g_v, d, value=-1, out=z_bar)  # z̄_t = g^z_t + g^v_t (v_reset - v^dec_t)
                if params.v_reset:
                    z_bar.add_(g_v, alpha=float(p.v_reset))
                x, c = surrogate_derivative_(torch.sub(d, p.v_th, out=x), params.surrogate, alpha)
                g_v.addcmul_(g_v, z, value=-1).addcmul_(z_bar, x, value=c)  # g^dec_t
                torch.mul(g_v, a, out=grad_current[t])
                g_v.sub_(grad_current[t])
        return grad_current, None, None


def box_lif_sequence(current: torch.Tensor, params: NeuronParams, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Spikes [T, ...] of box LIF neurons driven by ``current`` [T, ...] from rest (v = v_leak).

    ``current`` may be an expanded view (constant over T); nothing is copied then. ``mask``,
    broadcastable to ``current[0]``, zeroes spikes (and their gradients) where it is 0.
    """
    return _BoxLIFSequence.apply(current, mask, params)


class SpikeSumModule(nn.Module):
    """A population that keeps its last forward's differentiable spike count (``last_spike_sum``,
    for the spike budget). Copies and pickles leave it out: it is a node of the last graph, which
    ``copy.deepcopy`` refuses and a copy has no use for.

    ``synapses_per_spike``: the synapses one of its spikes drives downstream, declared by the
    model that wires it (None: not declared); the per-synapse budget weights its spikes by it
    (:func:`neuro_erc.snn.rates.population_counts`)."""

    synapses_per_spike: int | None = None

    def __getstate__(self):
        return {**self.__dict__, "last_spike_sum": None}


class LIF(SpikeSumModule):
    """One layer of box LIF neurons, multi-step and masked: [T, L, B, D] current → spikes.

    Spikes at padded positions (``mask`` False) are zero, so padding never reaches another
    layer. ``last_rate`` is the firing rate of the last forward over real positions (spikes per
    neuron per step), for logging; the spikes themselves are not kept. ``last_spike_sum`` (a
    differentiable scalar) and ``last_neuron_steps`` are the same rate's parts, for the spike
    budget (:func:`neuro_erc.snn.rates.mean_firing_rate`).
    """

    def __init__(self, params: NeuronParams, size: int):
        super().__init__()
        self.params, self.size = params, size
        self.last_rate: float | None = None
        self.last_spike_sum: torch.Tensor | None = None
        self.last_neuron_steps: torch.Tensor | None = None

    def forward(self, current: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if current.dim() != 4 or current.shape[-1] != self.size or current.shape[1:3] != mask.shape:
            raise ValueError(f"LIF({self.size}): expected current [T, L, B, {self.size}] with mask [L, B] = "
                             f"{list(mask.shape)}, got {list(current.shape)}")
        real = mask.to(current.dtype)[..., None]
        spikes = _BoxLIFSequence.apply(current, None if bool(mask.all()) else real, self.params)
        self.last_spike_sum = spikes.sum()
        with torch.no_grad():
            self.last_neuron_steps = n = real.sum() * current.shape[0] * self.size
            self.last_rate = float(self.last_spike_sum / n) if n > 0 else 0.0
        return spikes

    def extra_repr(self) -> str:
        p = self.params
        return f"{self.size}, tau_mem={p.tau_mem}, v_th={p.v_th}, v_reset={p.v_reset}, dt={p.dt}, surrogate={p.surrogate}"
