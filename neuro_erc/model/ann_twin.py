r"""The stream model's ANN twin (``"arch": "stream", "ann_twin": true``): the same network, nothing spiking.

Issue 11 asks for the stream model's energy *against a trained ANN of the same architecture*,
not against an operation count nobody trained. This is that ANN: every layer of
:mod:`.stream` kept — same inputs (features and speaker code), same Affines (``Synapse``,
batch norm folded in eval, float64 eval numbers), same residual stream, same soft-HGR
features, same readout — with each spiking population replaced by its non-spiking
counterpart, and trained by the same recipe (``train``, same loss and schedule).

**One pass per utterance.** A spiking layer holds an utterance's current over a window of T
steps and emits spike counts; its ReLU counterpart is applied once per utterance: the twin
has no time steps, so T (``model.core.T``) is unused and it is the same twin for every T of a
bench (``bench --ann-twin`` trains it once).

The mapping, population by population (:mod:`.stream`'s equations):

.. math::
    s &= \mathrm{ReLU}(A_e[x_l; c_l])                           && \text{box LIF → ReLU} \\
    q, k, v &= \mathrm{ReLU}(A_q s), \mathrm{ReLU}(A_k s), \mathrm{ReLU}(A_v s) \\
    C_l &= \mathrm{ReLU}(\bar\imath_l),\quad
           \bar\imath_l = a\,\bar\imath_{l-1} + (1 - a)\,A_c(k \odot v)_l   && \text{CubaLIF → leaky average, ReLU} \\
    s &\leftarrow s + \mathrm{ReLU}(A_p (q \odot C))           && \text{AND (a·b of spikes) → product} \\
    s &\leftarrow s + \mathrm{ReLU}(A_2\,\mathrm{ReLU}(A_1 s)) \\
    u_l &= a_r u_{l-1} + (1 - a_r) \textstyle\sum_m A_{r,m} s_m,\quad \mathrm{logits}_l = u_l  && \text{LI → leaky average}

**Why these counterparts.** The AND of two binary spikes is their product, so the ANN's is the
product of the two activations (not ``min``: a product is what the SNN's a·b computes, and its
gradient reaches both operands). The context's CubaLIF keeps a synaptic current that is not
reset by spikes: at the window level, a current held over one window keeps
:math:`a = e^{-1/h}` of its past (``tau_for_memory``) and takes the rest from the new input,
so its counterpart is the leaky average :math:`\bar\imath` above, per channel with the same
log-spaced memories ``model.stream.context_memory``, then a ReLU for the neurons that read it.
The readout's LI membrane, driven by a current held over a window, is exactly
:math:`u_l = a_r u_{l-1} + (1 - a_r) x_l` at the window's last step (memory
``readout_memory``): the same leaky average, without a ReLU (it is read, not fired). Both
averages run forward in utterance order from rest at each dialogue's start, so the twin is
causal and streams (``step``) like the SNN.

**Norm init.** The SNN's norms start at γ = ``norm_gain``·v_th, β = ``norm_bias``·v_th so that
every layer *fires* at init (a threshold to cross); a ReLU has no threshold, and that gain
would multiply activations by 10 per layer through the products, so the twin's norms start
at the standard γ = 1, β = 0.

**Energy.** The twin's layers have exactly the shapes the stream energy counter charges the
"ANN twin" for (:class:`~neuro_erc.energy.whole.StreamCounter`: ``ann_macs`` — every Synapse
once per utterance, each product D multiplications — and ``ann_outputs``, one activation per
neuron per utterance), so the bench's ``ann_energy_uj_whole[_memory]`` is this network's
energy; ``tests/test_ann_twin.py`` counts the twin's own synapses and checks it. Its leaky
averages' updates (O(D) per utterance against O(D²) MACs) are not charged, like the host's
elementwise gating.

Nothing here spikes: ``firing_rates()`` is empty, the spike budget (``loss.rate``) is refused,
and the export, Lava and energy-counting code (which read spiking populations) do not apply.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from ..snn.blocks import NormSpec
from .stream import CausalDialogueModel, StreamOutput, Synapse

if TYPE_CHECKING:
    from .spikemo import ModelConfig

TWIN_NORM_GAIN, TWIN_NORM_BIAS = 1.0, 0.0


class LeakyAverage(nn.Module):
    r"""Per channel, across utterances: :math:`u_l = a u_{l-1} + (1 - a) x_l` from :math:`u = 0`,
    :math:`a = e^{-1/h}` for memories ``h`` (utterances; one per channel, or one for all).

    ``forward(x [U, B, N], real [U, B], state)``: ``state`` None runs from rest; a dict starts
    from its entry for this module (absent: rest) and writes the last average back (streaming).
    Outputs at padding are zero."""

    def __init__(self, memory: torch.Tensor | float):
        super().__init__()
        keep = torch.exp(-1.0 / torch.as_tensor(memory, dtype=torch.float64))
        self.register_buffer("keep", keep.float(), persistent=False)

    def forward(self, x: torch.Tensor, real: torch.Tensor, state: dict | None) -> torch.Tensor:
        u = (state or {}).get(self)
        u = torch.zeros_like(x[0]) if u is None else u
        out = []
        for x_l in x:
            u = self.keep * u + (1 - self.keep) * x_l
            out.append(u)
        if state is not None:
            state[self] = u
        return torch.stack(out) * real[..., None].to(x.dtype)


class ReLULayer(nn.Module):
    """``ReLU(A x)``: a box LIF layer's counterpart, once per utterance; zero at padding."""

    def __init__(self, d_in: int, d_out: int, norm: NormSpec):
        super().__init__()
        self.synapse = Synapse(d_in, d_out, norm)

    def forward(self, x: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.synapse(x, real)) * real[..., None].to(x.dtype)


class TwinAttention(nn.Module):
    """``ReLU(A_p (q ⊙ C))``, ``C = ReLU(LeakyAverage(A_c (k ⊙ v)))``: the causal attention, in ReLUs."""

    def __init__(self, dim: int, norm: NormSpec, context_memory: torch.Tensor):
        super().__init__()
        self.q, self.k, self.v = (ReLULayer(dim, dim, norm) for _ in range(3))
        self.context_synapse = Synapse(dim, dim, norm)
        self.context = LeakyAverage(context_memory)
        self.proj = ReLULayer(dim, dim, norm)

    def forward(self, s: torch.Tensor, real: torch.Tensor, state: dict | None) -> torch.Tensor:
        q, k, v = (layer(s, real) for layer in (self.q, self.k, self.v))
        context = torch.relu(self.context(self.context_synapse(k * v, real), real, state))
        return self.proj(q * context, real)


class TwinBlock(nn.Module):
    """``a = Attn(s)``, ``s ← s + a``; ``s ← s + MLP(s or a)`` (``mlp_input``, as the stream model's)."""

    def __init__(self, dim: int, hidden: int, norm: NormSpec, context_memory: torch.Tensor, mlp_input: str):
        super().__init__()
        self.attn = TwinAttention(dim, norm, context_memory)
        self.fc1 = ReLULayer(dim, hidden, norm)
        self.fc2 = ReLULayer(hidden, dim, norm)
        self.mlp_reads_stream = mlp_input == "stream"

    def forward(self, s: torch.Tensor, real: torch.Tensor, state: dict | None) -> torch.Tensor:
        a = self.attn(s, real, state)
        s = s + a
        return s + self.fc2(self.fc1(s if self.mlp_reads_stream else a, real), real)


class TwinCore(nn.Module):
    """One modality: ``x [U, B, in_dim]`` (features and speaker code) → stream [U, B, D]."""

    def __init__(self, in_dim: int, cfg: "ModelConfig"):
        super().__init__()
        core = cfg.core
        norm = NormSpec(core.norm, TWIN_NORM_GAIN, TWIN_NORM_BIAS)
        memory = cfg.stream.context_memories(core.dim)
        self.encoder = ReLULayer(in_dim, core.dim, norm)
        self.blocks = nn.ModuleList(TwinBlock(core.dim, core.mlp_ratio * core.dim, norm, memory, cfg.stream.mlp_input)
                                    for _ in range(core.depth))

    def forward(self, x: torch.Tensor, real: torch.Tensor, state: dict | None) -> torch.Tensor:
        s = self.encoder(x, real)
        for block in self.blocks:
            s = block(s, real, state)
        return s


class StreamTwin(CausalDialogueModel):
    """The ANN twin of :class:`~neuro_erc.model.stream.StreamModel` (module docstring).

    Its per-modality cores are ``paths``, not ``streams`` or ``cores``: the code that reads a
    spiking model's populations (energy counting, export) must not take it for one."""

    def __init__(self, cfg: "ModelConfig"):
        super().__init__()
        self.cfg, self.slots = cfg, cfg.stream.max_speakers
        self.dropout = nn.Dropout(cfg.dropout)
        self.paths = nn.ModuleDict({m: TwinCore(cfg.input_dims[m] + self.slots + 1, cfg) for m in cfg.modalities})
        self.readout = nn.ModuleDict({m: Synapse(cfg.core.dim, cfg.n_classes, NormSpec("none")) for m in cfg.modalities})
        self.integrator = LeakyAverage(cfg.stream.readout_memory)

    def run(self, features: dict[str, torch.Tensor], codes: torch.Tensor, real: torch.Tensor,
            state: dict | None) -> StreamOutput:
        """Utterances of features ``m -> [U, B, D_m]``, speaker codes [U, B, slots + 1], ``real`` [U, B]."""
        current, feats = 0.0, {}
        for m, core in self.paths.items():
            feats[m] = core(torch.cat([self.dropout(features[m]), codes], dim=-1), real, state)
            current = current + self.readout[m](self.dropout(feats[m]), real)
        logits = self.integrator(current, real, state)
        return StreamOutput(logits, feats, torch.cat([feats[m] for m in self.cfg.modalities], dim=-1))

    def firing_rates(self) -> dict[str, float]:
        """None: nothing spikes (the training log's ``firing_rates`` is empty)."""
        return {}
