r"""Pieces of the spiking core: masked batch norm, a synapse+LIF layer, SSA/SDSA attention, MLP.

Tensors are time-first and utterance-major: ``[T, L, B, D]`` (T steps, L utterances,
B dialogues, D channels) with ``mask [L, B]`` True at real utterances. Every LIF output is
zero at padding, so padding never reaches a real utterance.

A synaptic layer is ``LIF(Norm(Linear(s)))``: a plain ``nn.Linear``, an optional norm, and a
:class:`~neuro_erc.snn.lif.LIF` module, each its own module so forward hooks see the Linear's
input (spikes or the analog input) and each LIF's spikes. Batch norm folds into the Linear at
inference (:func:`fold_batchnorm`), leaving ``I = W s + b`` for the NIR/Lava export.

Attention over the utterances of a dialogue, per time step:

* SSA (Spikformer, Zhou et al., ICLR 2023; the SpikEmo reference), per head h:
  :math:`Y_h = \mathrm{scale}\cdot(Q_h K_h^\top) V_h`, no softmax; padded keys are zero spikes,
  so they add nothing. Spike×spike products: not exportable as a small NIR graph.
* SDSA (Spike-driven Transformer, Yao et al., NeurIPS 2023, the "Q ⊙ SN(SUM(K ⊙ V))" form):
  :math:`C = \mathrm{SN}(\sum_{l\ \mathrm{real}} K_l \odot V_l)` per channel ([T, 1, B, D]),
  :math:`Y = Q \odot C` broadcast over utterances. Only ANDs of binary spikes, a sum over
  utterances, a LIF and a broadcast: exportable.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from . import layers
from .layers import InputType, LayerInfo
from .lif import LIF
from .neuron import NeuronParams


_CHUNK = 1 << 20  # elements per chunk of a row-wise pass: small temporaries are reused by malloc


def _row_chunks(n_rows: int, width: int):
    step = max(1, _CHUNK // width)
    return [slice(i, min(i + step, n_rows)) for i in range(0, n_rows, step)]


class _MaskedBatchNormTrain(torch.autograd.Function):
    r"""Training-mode batch norm of ``x`` [N, D] **in place**, statistics over the rows with
    ``m = 1`` (rows with ``m = 0`` are normalised with the same statistics but do not enter them).

    .. math::
        \mu = \tfrac1n \sum_r m_r x_r,\quad \sigma^2 = \tfrac1n \sum_r m_r (x_r-\mu)^2,\quad
        \hat x = (x-\mu)\,r,\ r = (\sigma^2+\epsilon)^{-1/2},\quad y = \gamma\hat x + \beta

    Backward (n = Σ m), with :math:`\hat x = (y-\beta)/\gamma`:

    .. math::
        g_\beta = \textstyle\sum m g,\quad g_\gamma = \sum m g \hat x
            = (\sum m g y - \beta g_\beta)/\gamma, \\
        g_x = \gamma r\,(g - m(g_\beta + \hat x g_\gamma)/n)
            = \gamma r\, g - m\,\tfrac{r}{n}(\gamma g_\beta - \beta g_\gamma + y\, g_\gamma)

    As in In-Place Activated BatchNorm (Rota Bulò et al., CVPR 2018), ``y`` overwrites ``x`` and
    the backward works from ``y`` (which the LIF after it saves anyway): one activation per
    layer less to keep, and one less to allocate. This needs γ ≠ 0 (γ is divided out per
    channel). Row chunks keep temporaries small.
    """

    @staticmethod
    def forward(ctx, x, m, weight, bias, bn: "MaskedBatchNorm1d"):
        n = m.sum()  # reductions as matrix-vector products: ~10x faster than var_mean(dim=0) here
        mean = (m @ x) / n
        var = sum(m[c] @ (x[c] - mean).square_() for c in _row_chunks(*x.shape)) / n
        bn.update_running_stats(mean, var, n)
        rstd = (var + bn.eps).rsqrt()
        scale = weight * rstd
        torch.addcmul(bias - mean * scale, x, scale, out=x)
        ctx.mark_dirty(x)
        ctx.save_for_backward(x, m, weight, bias, rstd)
        ctx.n, ctx.all_real = n, bool(n == x.shape[0])
        return x

    @staticmethod
    def backward(ctx, g):
        y, m, weight, bias, rstd = ctx.saved_tensors
        chunks = _row_chunks(*y.shape)
        g_bias = m @ g
        g_weight = (sum(m[c] @ (g[c] * y[c]) for c in chunks) - bias * g_bias) / weight
        scale = weight * rstd
        shift = rstd / ctx.n * (weight * g_bias - bias * g_weight)  # m (r/n)(γ g_β − β g_γ)
        slope = rstd / ctx.n * g_weight  # m (r/n) g_γ, times y
        g_x = torch.empty_like(g)
        for c in chunks:
            correction = torch.addcmul(shift, y[c], slope)
            if not ctx.all_real:
                correction.mul_(m[c, None])
            torch.mul(g[c], scale, out=g_x[c]).sub_(correction)
        return g_x, None, g_weight, g_bias, None


class MaskedBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm over channels with statistics over real utterances only (all T steps).

    ``forward(x [N, D], real [N] bool)``: rows are (time, utterance, dialogue) positions, ``real``
    marks the rows of real utterances. Training mode normalises ``x`` in place (it is the
    Linear's fresh output; a forward hook that keeps that output sees the normalised values).
    In eval mode it is the per-channel affine ``γ (x − μ_run)/√(σ²_run + ε) + β`` and folds into
    the preceding Linear (:func:`fold_batchnorm`).
    """

    def forward(self, x: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        if not self.training:
            scale, shift = self.eval_affine()
            return torch.addcmul(shift, x, scale)
        return _MaskedBatchNormTrain.apply(x, real.to(x.dtype), self.weight, self.bias, self)

    @torch.no_grad()
    def update_running_stats(self, mean: torch.Tensor, var: torch.Tensor, n: torch.Tensor) -> None:
        """Exponential averages as ``nn.BatchNorm1d`` keeps them (unbiased variance)."""
        self.running_mean.lerp_(mean, self.momentum)
        self.running_var.lerp_(var * n / (n - 1).clamp_min(1), self.momentum)
        self.num_batches_tracked += 1

    def eval_affine(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(scale, shift) of the eval-mode map ``y = scale·x + shift``."""
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        return scale, self.bias - self.running_mean * scale


class LayerNorm(nn.LayerNorm):
    """LayerNorm over channels, per position (the reference's choice); ``real`` is not needed."""

    def forward(self, x: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        return super().forward(x)


def fold_batchnorm(linear: nn.Linear, bn: MaskedBatchNorm1d) -> tuple[torch.Tensor, torch.Tensor]:
    """Effective (W, b) of ``BN(linear(x))`` in eval mode: ``W' = diag(s) W``, ``b' = s·b + shift``."""
    scale, shift = bn.eval_affine()
    bias = linear.bias if linear.bias is not None else torch.zeros_like(shift)
    return (scale[:, None] * linear.weight).detach(), (scale * bias + shift).detach()


@dataclass(frozen=True)
class NormSpec:
    """Which norm follows each Linear (``batch`` | ``layer`` | ``none``) and its initial γ, β."""

    kind: str = "batch"
    gain: float = 1.0
    bias: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("batch", "layer", "none"):
            raise ValueError(f"norm must be 'batch', 'layer' or 'none', got {self.kind!r}")

    def make(self, dim: int) -> nn.Module | None:
        if self.kind == "none":
            return None
        norm = MaskedBatchNorm1d(dim) if self.kind == "batch" else LayerNorm(dim)
        nn.init.constant_(norm.weight, self.gain)
        nn.init.constant_(norm.bias, self.bias)
        return norm


class SpikingLayer(nn.Module):
    """``LIF(Norm(Linear(s)))`` over T steps.

    ``s`` is ``[T, L, B, D_in]`` (spikes or an integer residual stream), or the analog
    ``[L, B, D_in]`` input of the first layer: then the Linear and norm run once and the same
    current drives the LIF at every step (``T`` must be given; no copy over T is made).
    The Linear is called on rows: a forward hook on it sees ``[T·L·B, D_in]`` (``[L·B, D_in]``
    for the analog input); rows at padding are zero spikes, except in the analog input.
    """

    def __init__(self, d_in: int, d_out: int, neuron: NeuronParams, norm: NormSpec):
        super().__init__()
        self.linear = nn.Linear(d_in, d_out)
        self.norm = norm.make(d_out)
        self.lif = LIF(neuron, d_out)

    def forward(self, s: torch.Tensor, mask: torch.Tensor, T: int | None = None) -> torch.Tensor:
        lead = s.shape[:-1]
        # The Linear sees rows [N, D_in] so its output is a fresh tensor (not a view) the norm
        # may overwrite.
        current = self.linear(s.reshape(-1, s.shape[-1]))
        if self.norm is not None:
            current = self.norm(current, mask.expand(lead).reshape(-1))
        current = current.view(*lead, -1)
        if current.dim() == 3:
            current = current.expand(T, *current.shape)
        return self.lif(current, mask)

    def effective_affine(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Eval-mode (W, b) of ``Norm(Linear(·))``: batch norm folded in; LayerNorm cannot fold."""
        if self.norm is None:
            bias = self.linear.bias if self.linear.bias is not None else torch.zeros(self.linear.out_features)
            return self.linear.weight.detach(), bias.detach()
        if isinstance(self.norm, MaskedBatchNorm1d):
            return fold_batchnorm(self.linear, self.norm)
        raise ValueError(f"{type(self.norm).__name__} normalises each position by its own statistics: "
                         "it does not fold into a Linear (use norm='batch' or 'none' for export)")

    def describe(self, prefix: str, source: str, input_type: InputType) -> list[LayerInfo]:
        lin, lif = self.linear, self.lif
        return [
            layers.Linear(f"{prefix}.linear", (source,), lin.in_features, lin.out_features, input_type, module=lin),
            _lif_info(f"{prefix}.lif", lif, f"{prefix}.linear"),
        ]


def _lif_info(name: str, lif: LIF, source: str) -> layers.LIF:
    return layers.LIF(name, (source,), lif.size, lif.params, module=lif)


def _describe_qkv(attn: nn.Module, prefix: str, source: str, input_type: InputType) -> list[LayerInfo]:
    return [info for n in ("q", "k", "v") for info in getattr(attn, n).describe(f"{prefix}.{n}", source, input_type)]


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """[T, L, B, D] → [T, B, H, L, D/H]."""
    T, L, B, D = x.shape
    return x.view(T, L, B, heads, D // heads).permute(0, 2, 3, 1, 4)


class SSAttention(nn.Module):
    """Spikformer self-attention over utterances: ``LIF_attn(scale·(Q Kᵀ) V)`` per head, then a
    projection layer. Padded keys/values are zero spikes, so they contribute nothing."""

    def __init__(self, dim: int, heads: int, neuron: NeuronParams, attn_neuron: NeuronParams, norm: NormSpec, scale: float):
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads, self.scale = heads, scale
        self.q, self.k, self.v = (SpikingLayer(dim, dim, neuron, norm) for _ in range(3))
        self.attn_lif = LIF(attn_neuron, dim)
        self.proj = SpikingLayer(dim, dim, neuron, norm)

    def forward(self, s: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        q, k, v = (_heads(layer(s, mask), self.heads) for layer in (self.q, self.k, self.v))
        y = (q @ k.transpose(-1, -2)) @ v  # [T, B, H, L, D/H], integer counts
        T, B, H, L, dh = y.shape
        y = y.permute(0, 3, 1, 2, 4).reshape(T, L, B, H * dh) * self.scale
        return self.proj(self.attn_lif(y, mask), mask)

    def describe(self, prefix: str, source: str, input_type: InputType) -> list[LayerInfo]:
        D = self.attn_lif.size
        steps = _describe_qkv(self, prefix, source, input_type) + [
            layers.SSAMatmul(f"{prefix}.qkv_matmul", tuple(f"{prefix}.{n}.lif" for n in "qkv"), D, self.heads),
            _lif_info(f"{prefix}.attn_lif", self.attn_lif, f"{prefix}.qkv_matmul"),
        ]
        return steps + self.proj.describe(f"{prefix}.proj", f"{prefix}.attn_lif", InputType.SPIKES)


class SDSAttention(nn.Module):
    """Spike-driven self-attention: ``Q ⊙ LIF_ctx(Σ_l K_l ⊙ V_l)``, then a projection layer.

    The context LIF sees one "utterance" per dialogue (its input is [T, 1, B, D]).
    """

    def __init__(self, dim: int, neuron: NeuronParams, attn_neuron: NeuronParams, norm: NormSpec):
        super().__init__()
        self.q, self.k, self.v = (SpikingLayer(dim, dim, neuron, norm) for _ in range(3))
        self.context_lif = LIF(attn_neuron, dim)
        self.proj = SpikingLayer(dim, dim, neuron, norm)

    def forward(self, s: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        q, k, v = (layer(s, mask) for layer in (self.q, self.k, self.v))
        kv = (k * v).sum(dim=1, keepdim=True)  # [T, 1, B, D]: AND, then count over utterances
        context = self.context_lif(kv, torch.ones_like(mask[:1]))
        return self.proj(q * context, mask)

    def describe(self, prefix: str, source: str, input_type: InputType) -> list[LayerInfo]:
        D = self.context_lif.size
        steps = _describe_qkv(self, prefix, source, input_type) + [
            layers.And(f"{prefix}.kv_and", (f"{prefix}.k.lif", f"{prefix}.v.lif"), D),
            layers.UtteranceSum(f"{prefix}.kv_sum", (f"{prefix}.kv_and",), D),
            _lif_info(f"{prefix}.context_lif", self.context_lif, f"{prefix}.kv_sum"),
            layers.And(f"{prefix}.qc_and", (f"{prefix}.q.lif", f"{prefix}.context_lif"), D),
        ]
        return steps + self.proj.describe(f"{prefix}.proj", f"{prefix}.qc_and", InputType.SPIKES)


class SpikingMLP(nn.Module):
    """Two spiking layers D → hidden → D."""

    def __init__(self, dim: int, hidden: int, neuron: NeuronParams, norm: NormSpec):
        super().__init__()
        self.fc1 = SpikingLayer(dim, hidden, neuron, norm)
        self.fc2 = SpikingLayer(hidden, dim, neuron, norm)

    def forward(self, s: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.fc1(s, mask), mask)

    def describe(self, prefix: str, source: str, input_type: InputType) -> list[LayerInfo]:
        return self.fc1.describe(f"{prefix}.fc1", source, input_type) + \
            self.fc2.describe(f"{prefix}.fc2", f"{prefix}.fc1.lif", InputType.SPIKES)


class SpikingBlock(nn.Module):
    """``s ← s + Attn(s)``; ``s ← s + MLP(s)``. The residual stream is integer-valued."""

    def __init__(self, attn: nn.Module, mlp: SpikingMLP):
        super().__init__()
        self.attn, self.mlp = attn, mlp

    def forward(self, s: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        s = s + self.attn(s, mask)
        return s + self.mlp(s, mask)

    def describe(self, prefix: str, source: str, input_type: InputType) -> list[LayerInfo]:
        """Layers in execution order; the last one is the block's output (a residual).

        ``input_type`` is ``spikes`` (after the encoder) or ``counts`` (after a block)."""
        attn = self.attn.describe(f"{prefix}.attn", source, input_type)
        D = attn[-1].size
        res_attn = layers.Residual(f"{prefix}.res_attn", (source, attn[-1].name), D)
        mlp = self.mlp.describe(f"{prefix}.mlp", res_attn.name, InputType.COUNTS)
        res_mlp = layers.Residual(f"{prefix}.res_mlp", (res_attn.name, mlp[-1].name), D)
        return attn + [res_attn] + mlp + [res_mlp]
