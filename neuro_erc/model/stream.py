r"""The stream model (``--arch stream``): everything after the utterance features is spiking and causal.

**Time.** Utterance :math:`l` of a dialogue owns a window of T steps, step :math:`\tau = lT + t`.
Windows follow each other without a gap, and every neuron keeps its state from one window to
the next: state starts at rest with a dialogue and never resets inside it. Nothing reads a
later step, so the model is causal, and a stream of utterances advances it window by window
(:meth:`StreamModel.step`) to the same spikes as the whole dialogue at once (``forward``).

**One core per modality m.** Input: the utterance's features :math:`x_l` and its speaker code
:math:`c_l` (one-hot of the speaker's index within the dialogue, in order of first turn, the
last of ``max_speakers`` slots shared; and a bit "same speaker as the previous utterance"),
held constant over the window. A is an Affine (batch norm folds into it in eval), LIF a box
LIF layer (:class:`~neuro_erc.snn.neuron.NeuronParams`), ∧ the AND of binary spikes (a·b):

.. math::
    s &= \mathrm{LIF}(A_e[x_l; c_l])                                  && \text{encoder} \\
    q, k, v &= \mathrm{LIF}(A_q s), \mathrm{LIF}(A_k s), \mathrm{LIF}(A_v s) \\
    C &= \mathrm{CubaLIF}(\kappa \odot A_c (k \wedge v))               && \text{context, below} \\
    a &= \mathrm{LIF}(A_p (q \wedge C)),\quad s \leftarrow s + a       && \text{causal attention} \\
    s &\leftarrow s + \mathrm{LIF}(A_2\,\mathrm{LIF}(A_1 s))           && \text{MLP; ``depth`` blocks}

(with ``stream.mlp_input = "attention"`` the MLP reads the attention's output a instead of the
stream s: the stream's spikes then drive no fc1 synapse, which cuts the input encoder's fan-out
from q, k, v + fc1 to q, k, v, the costly part of the synaptic ops, docs/results.md §12).

**The context** is SDSA's :math:`\mathrm{SN}(\sum_l K_l \wedge V_l)` (Yao et al., NeurIPS 2023)
with the sum over utterances replaced by a sum over *past* steps that forgets: the CubaLIF's
synaptic current :math:`i \leftarrow (1 - \kappa)(i + \kappa \odot A_c(k \wedge v))`,
:math:`\kappa = dt/\tau_{syn}`, is not reset by spikes, so it is a leaky running average of
what K∧V wrote, utterance after utterance, and its spikes encode the recent dialogue. Each
channel has its own fixed :math:`\tau_{syn}` (log-spaced so that one window keeps
:math:`e^{-1/h}` of the current, h from ``context_memory[0]`` to ``[1]`` utterances): short
channels follow the last turns (emotion contagion), long ones the dialogue's mood. κ makes
the current an average, not a sum, so its scale does not depend on the horizon. The
context's state is two numbers (i, v) per channel whatever the dialogue's length: one graph
serves every length. The query of the current utterance gates which context channels pass (q ∧ C); with the
speaker in the encoder's input, channels can carry one speaker's history, which that speaker's
query can pick out.

**Readout**, spiking too: leaky integrators (no spikes, NIR ``LI``), one per class, fed by
every modality's final stream, read at the window's last step:

.. math:: u \leftarrow \mathrm{LI}\big(\textstyle\sum_m A_{r,m}\, s_m\big),\qquad \mathrm{logits}_l = u_{lT + T - 1}

(memory ``readout_memory`` windows: what a logit keeps of the previous utterance). Modalities
are fused there, in the readout's input: NIR edges into a node sum, so fusion costs no neuron
and no host step, and soft-HGR (on each modality's window-mean stream, ``features``) aligns
the modalities without a cross-modal attention no chip runs. The host only builds the input
(concatenates features and speaker code) and reads the integrators once per window.

**NIR nodes** (for the export): every A is ``Affine`` (eval weights:
:meth:`Synapse.effective_affine`); each LIF is ``LIF`` (τ = 1/τ_mem⁻¹, r = 1); each ∧ is a
memoryless ``LIF`` (τ = dt, r = 1, v_leak = 0, v_threshold = 1.5) on the sum of its two spike
edges; the context is ``CubaLIF`` (τ_syn per channel, τ_mem, v_threshold = ``core.attn_v_th``)
whose input is κ ⊙ (Affine output); the readout is one ``LI`` (τ = ``StreamModel.readout_tau``,
r = 1, v_leak = 0) fed by one ``Affine`` per modality; residuals are edges (no node). In Lava
every synapse costs a step: q meets C two layers later and each residual skips its branch's
layers, so those paths need ``Delay``.

**Numbers.** In eval mode each Affine is applied in float64 and rounded to float32, so a row's
current never depends on which other rows it is computed with (a float32 matmul's does, in
the last bits, with the batch's size): a dialogue gives the same spikes alone, in a batch, or
streamed. Training mode uses float32 and batch statistics (over real steps): causal only in
eval, like any batch norm.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..config import check_choice, check_range, require
from ..data.batching import Batch
from ..snn.blocks import NormSpec, fold_batchnorm
from ..snn.core import CoreConfig
from ..snn.neuron import NeuronParams
from ..snn.stateful import BoxLIF, CubaLIF, LeakyIntegrator, tau_for_memory

if TYPE_CHECKING:
    from .spikemo import ModelConfig


MLP_INPUTS = ("stream", "attention")


@dataclass
class StreamConfig:
    """What only the stream model has. Its shape and neurons come from ``model.core``: ``dim``,
    ``depth`` (0: no attention; then only the membranes carry anything across utterances),
    ``mlp_ratio``, ``T``, ``neuron``, ``norm`` ('batch' or 'none'), ``norm_gain``, ``norm_bias``,
    and ``attn_v_th`` as the context neurons' threshold; ``model.dropout`` drops input features
    and readout spikes in training.

    Fields:
        max_speakers: one-hot slots for the speaker's index within the dialogue (order of first
            turn); speakers past the last slot share it.
        context_memory: (shortest, longest) memory of the context current, in utterance windows
            (one window keeps e^{-1/h} of it); the channels' memories are log-spaced between them.
        readout_memory: memory of the readout integrators, in windows.
        mlp_input: what each block's MLP reads: "stream" (the residual stream after the
            attention, as in Spikformer's blocks) or "attention" (that block's attention output).
    """

    max_speakers: int = 9
    context_memory: tuple[float, float] = (1.0, 8.0)
    readout_memory: float = 0.5
    mlp_input: str = "stream"

    def __post_init__(self) -> None:
        check_range("max_speakers", self.max_speakers, ge=1)
        lo, hi = self.context_memory
        require(math.isfinite(lo) and math.isfinite(hi) and 0 < lo <= hi, "context_memory",
                "[shortest, longest] with 0 < shortest ≤ longest", list(self.context_memory))
        check_range("readout_memory", self.readout_memory, gt=0)
        check_choice("mlp_input", self.mlp_input, MLP_INPUTS)

    def context_memories(self, channels: int) -> torch.Tensor:
        """Each context channel's memory in windows, log-spaced (float64)."""
        lo, hi = (math.log(h) for h in self.context_memory)
        return torch.linspace(lo, hi, channels, dtype=torch.float64).exp()


# ---- the input: features and speaker code ---------------------------------------------------


def speaker_code(index: torch.Tensor, same: torch.Tensor, slots: int) -> torch.Tensor:
    """``[onehot(min(index, slots − 1)); same]`` (float, last dim ``slots + 1``) for speaker
    indices ``index`` and "same speaker as the previous utterance" flags ``same`` (bool)."""
    onehot = nn.functional.one_hot(index.clamp(max=slots - 1), slots)
    return torch.cat([onehot, same[..., None]], dim=-1).float()


def dialogue_speaker_codes(speakers: torch.Tensor, mask: torch.Tensor, slots: int) -> torch.Tensor:
    """Speaker codes [L, B, slots + 1] of a batch (``speakers``, ``mask`` [L, B]); zero at padding."""
    same = torch.zeros_like(mask)
    same[1:] = (speakers[1:] == speakers[:-1]) & mask[1:]
    return speaker_code(speakers, same, slots) * mask[..., None]


# ---- layers -----------------------------------------------------------------------------------


class Synapse(nn.Module):
    """The current ``A x = W x + b`` into a population, with an optional batch norm after the Linear.

    ``forward(x [..., d_in], real [...])``: training mode runs the Linear in float32 and the
    masked batch norm (statistics over ``real`` rows); eval mode applies the folded
    :meth:`effective_affine` in float64 and rounds to float32 (module docstring, **Numbers**).
    """

    def __init__(self, d_in: int, d_out: int, norm: NormSpec):
        super().__init__()
        self.linear = nn.Linear(d_in, d_out)
        self.norm = norm.make(d_out)
        self._eval_affine: tuple[tuple, torch.Tensor, torch.Tensor] | None = None

    def forward(self, x: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        lead, rows = x.shape[:-1], x.reshape(-1, x.shape[-1])
        if self.training:
            current = self.linear(rows)  # a fresh tensor: the norm normalises it in place
            if self.norm is not None:
                current = self.norm(current, real.reshape(-1))
        else:
            weight, bias = self._float64_affine()
            current = nn.functional.linear(rows.double(), weight, bias).float()
        return current.view(*lead, -1)

    def _float64_affine(self) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`effective_affine` in float64, kept until a weight or statistic changes (their
        in-place version counters, which optimiser steps and ``load_state_dict`` bump): a
        streamed utterance would otherwise spend ~1.5 ms folding."""
        tensors = [*self.linear.parameters(), *(self.norm.parameters() if self.norm is not None else ()),
                   *(self.norm.buffers() if self.norm is not None else ())]
        key = tuple((t.data_ptr(), t._version) for t in tensors)
        if self._eval_affine is None or self._eval_affine[0] != key:
            weight, bias = self.effective_affine()
            self._eval_affine = (key, weight.double(), bias.double())
        return self._eval_affine[1:]

    def effective_affine(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Eval-mode (W [out, in], b [out]) with the batch norm folded in: the NIR ``Affine``."""
        if self.norm is not None:
            return fold_batchnorm(self.linear, self.norm)
        return self.linear.weight.detach(), self.linear.bias.detach()


class Layer(nn.Module):
    """``LIF(A x)``. ``hold`` > 1: ``x`` is one row per window [U, B, d_in] (the analog input);
    its current is held over ``hold`` steps → spikes [U·hold, B, d_out]."""

    def __init__(self, d_in: int, d_out: int, neuron: NeuronParams, norm: NormSpec):
        super().__init__()
        self.synapse = Synapse(d_in, d_out, norm)
        self.lif = BoxLIF(neuron, d_out)

    def forward(self, x: torch.Tensor, real: torch.Tensor, state: dict | None, hold: int = 1) -> torch.Tensor:
        current = self.synapse(x, real)
        if hold > 1:
            current, real = current.repeat_interleave(hold, dim=0), real.repeat_interleave(hold, dim=0)
        return self.lif(current, real, state)


class CausalAttention(nn.Module):
    """``LIF(A_p (q ∧ C))`` with ``C = CubaLIF(κ ⊙ A_c (k ∧ v))``: attention to the past, in neuron state."""

    def __init__(self, dim: int, neuron: NeuronParams, context_neuron: NeuronParams, norm: NormSpec,
                 tau_syn: torch.Tensor):
        super().__init__()
        self.q, self.k, self.v = (Layer(dim, dim, neuron, norm) for _ in range(3))
        self.context_synapse = Synapse(dim, dim, norm)
        self.register_buffer("context_gain", (context_neuron.dt / tau_syn).float(), persistent=False)  # κ
        self.context = CubaLIF(context_neuron, tau_syn)
        self.proj = Layer(dim, dim, neuron, norm)

    def forward(self, s: torch.Tensor, real: torch.Tensor, state: dict | None) -> torch.Tensor:
        q, k, v = (layer(s, real, state) for layer in (self.q, self.k, self.v))
        context = self.context(self.context_gain * self.context_synapse(k * v, real), real, state)
        return self.proj(q * context, real, state)


class CausalBlock(nn.Module):
    """``a = Attn(s)``, ``s ← s + a``; ``s ← s + MLP(s or a)``: the residual stream counts spikes
    (integers); the MLP reads the stream, or with ``mlp_input`` "attention" only ``a``."""

    def __init__(self, cfg: CoreConfig, norm: NormSpec, tau_syn: torch.Tensor, mlp_input: str = "stream"):
        super().__init__()
        D, n = cfg.dim, cfg.neuron
        self.attn = CausalAttention(D, n, cfg.attn_neuron, norm, tau_syn)
        self.fc1 = Layer(D, cfg.mlp_ratio * D, n, norm)
        self.fc2 = Layer(cfg.mlp_ratio * D, D, n, norm)
        self.mlp_reads_stream = mlp_input == "stream"

    def forward(self, s: torch.Tensor, real: torch.Tensor, state: dict | None) -> torch.Tensor:
        a = self.attn(s, real, state)
        s = s + a
        return s + self.fc2(self.fc1(s if self.mlp_reads_stream else a, real, state), real, state)


class StreamCore(nn.Module):
    """One modality: windows ``x [U, B, in_dim]`` (features and speaker code) → stream [U·T, B, D],
    which a readout of ``readout_size`` synapses per stream neuron reads; ``mlp_input``: what the
    blocks' MLPs read (:class:`StreamConfig`)."""

    def __init__(self, in_dim: int, cfg: CoreConfig, tau_syn: torch.Tensor, readout_size: int,
                 mlp_input: str = "stream"):
        super().__init__()
        n, self.T = cfg.neuron, cfg.T
        norm = NormSpec(cfg.norm, cfg.norm_gain * n.v_th, cfg.norm_bias * n.v_th)
        self.encoder = Layer(in_dim, cfg.dim, n, norm)
        self.blocks = nn.ModuleList(CausalBlock(cfg, norm, tau_syn, mlp_input) for _ in range(cfg.depth))
        self._declare_synapses_per_spike(readout_size)

    def _declare_synapses_per_spike(self, readout_size: int) -> None:
        """Each population's fan-out (``synapses_per_spike``, the per-synapse spike budget's
        weights), walking the residual stream back from the readout: a spike that enters the
        stream drives every later block's q, k, v (and fc1 when the MLP reads the stream) and the
        readout; the attention's output also drives its own block's fc1. An AND's input is given
        its output's synapses: an upper bound (it passes only when its partner spikes)."""
        downstream = readout_size  # synapses per spike of the final stream
        for block in reversed(self.blocks):
            attn, mlp = block.attn, block.fc1.synapse.linear.out_features
            block.fc2.lif.synapses_per_spike = downstream
            block.fc1.lif.synapses_per_spike = block.fc2.synapse.linear.out_features
            attn.proj.lif.synapses_per_spike = mlp + downstream
            after_attention = mlp + downstream if block.mlp_reads_stream else downstream
            attn.q.lif.synapses_per_spike = attn.proj.synapse.linear.out_features  # via q ∧ C
            attn.context.synapses_per_spike = attn.proj.synapse.linear.out_features  # via q ∧ C
            for kv in (attn.k, attn.v):  # via k ∧ v
                kv.lif.synapses_per_spike = attn.context_synapse.linear.out_features
            downstream = after_attention + sum(layer.synapse.linear.out_features for layer in (attn.q, attn.k, attn.v))
        self.encoder.lif.synapses_per_spike = downstream

    def forward(self, x: torch.Tensor, real: torch.Tensor, state: dict | None) -> torch.Tensor:
        s = self.encoder(x, real, state, hold=self.T)
        real = real.repeat_interleave(self.T, dim=0)
        for block in self.blocks:
            s = block(s, real, state)
        return s


# ---- the model --------------------------------------------------------------------------------


@dataclass
class StreamOutput:
    """What training and evaluation read (the fields of SpikEmo's ``ModelOutput`` they use)."""

    logits: torch.Tensor  # [L, B, C]: the readout integrators at each window's last step
    features: dict[str, torch.Tensor]  # m -> [L, B, D]: the modality's stream, mean over the window (soft-HGR)
    hidden: torch.Tensor  # [L, B, M·D]: those, concatenated (the contrastive loss)


class CausalDialogueModel(nn.Module):
    """What the stream model and its ANN twin (:mod:`.ann_twin`) share: ``forward(batch)`` runs
    whole dialogues from rest and ``step(...)`` one utterance from a state, both through
    ``run(features, codes, real, state)``, which each defines. ``slots``: speaker-code slots."""

    slots: int

    def run(self, features: dict[str, torch.Tensor], codes: torch.Tensor, real: torch.Tensor,
            state: dict | None) -> StreamOutput:
        raise NotImplementedError

    def forward(self, batch: Batch, state: dict | None = None) -> StreamOutput:
        codes = dialogue_speaker_codes(batch.speakers, batch.mask, self.slots)
        return self.run(batch.features, codes, batch.mask, state)

    def step(self, features: dict[str, torch.Tensor], index: torch.Tensor, same: torch.Tensor,
             state: dict) -> torch.Tensor:
        """One utterance of B dialogues: features ``m -> [B, D_m]``, speaker indices and
        same-speaker flags [B] → logits [B, C]; ``state`` advances by one utterance."""
        codes = speaker_code(index, same, self.slots)[None]
        real = torch.ones(codes.shape[:2], dtype=torch.bool, device=codes.device)
        return self.run({m: x[None] for m, x in features.items()}, codes, real, state).logits[0]


class StreamModel(CausalDialogueModel):
    """``forward(batch)``: whole dialogues from rest; ``step(...)``: one utterance window from a state.

    A state is a dict mapping each population to its Norse state (``{}``: at rest); ``step``
    advances it in place. There is no ``cores`` attribute: the per-modality cores are
    ``streams`` and they are not SpikEmo's (the SpikEmo export and energy counting refuse them).
    """

    def __init__(self, cfg: "ModelConfig"):
        super().__init__()
        self.cfg = cfg
        core, dt = cfg.core, cfg.core.neuron.dt
        self.slots = cfg.stream.max_speakers
        tau_syn = tau_for_memory(cfg.stream.context_memories(core.dim), core.T, dt)
        self.readout_tau = float(tau_for_memory(cfg.stream.readout_memory, core.T, dt))
        self.dropout = nn.Dropout(cfg.dropout)
        self.streams = nn.ModuleDict(
            {m: StreamCore(cfg.input_dims[m] + self.slots + 1, core, tau_syn, cfg.n_classes, cfg.stream.mlp_input)
             for m in cfg.modalities})
        self.readout = nn.ModuleDict({m: Synapse(core.dim, cfg.n_classes, NormSpec("none")) for m in cfg.modalities})
        self.integrator = LeakyIntegrator(cfg.n_classes, self.readout_tau, dt)

    def run(self, features: dict[str, torch.Tensor], codes: torch.Tensor, real: torch.Tensor,
            state: dict | None) -> StreamOutput:
        """Windows of features ``m -> [U, B, D_m]``, speaker codes [U, B, slots + 1], ``real`` [U, B]."""
        U, B = real.shape
        T = self.cfg.core.T
        real_steps = real.repeat_interleave(T, dim=0)
        current, feats = 0.0, {}
        for m, core in self.streams.items():
            s = core(torch.cat([self.dropout(features[m]), codes], dim=-1), real, state)  # [U·T, B, D]
            feats[m] = s.view(U, T, B, -1).mean(dim=1)
            current = current + self.readout[m](self.dropout(s), real_steps)
        u = self.integrator(current, real_steps, state)
        logits = u.view(U, T, B, -1)[:, -1]
        return StreamOutput(logits, feats, torch.cat([feats[m] for m in self.cfg.modalities], dim=-1))

    def firing_rates(self) -> dict[str, float]:
        """Per-population firing rates of the last forward or step, keyed ``<modality>.<layer>``."""
        return {f"{m}.{name}": pop.last_rate for m, core in self.streams.items()
                for name, pop in core.named_modules() if isinstance(pop, (BoxLIF, CubaLIF)) and pop.last_rate is not None}


def check_stream_core(core: CoreConfig) -> None:
    """Refuse the core options the stream model does not implement (instead of ignoring them)."""
    require(core.attention == "sdsa", "model.core.attention",
            "'sdsa' with arch 'stream' (its causal attention is SDSA's, made causal; SSA is not built)", core.attention)
    require(core.norm != "layer", "model.core.norm",
            "'batch' or 'none' with arch 'stream' (LayerNorm does not fold into the Affine a chip runs)", core.norm)

