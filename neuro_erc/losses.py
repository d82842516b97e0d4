"""Training losses of SpikEmo/MultiEMO, as pure functions over the real utterances of a batch.

The caller removes padding first: ``logits [N, C]``, ``labels [N]`` (0..C-1), features ``[N, D]``.
``total_loss`` combines the terms a ``LossConfig`` enables (weight 0 = term not computed).
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .config import check_range, require
from .data.types import IGNORE_LABEL, DataError
from .errors import ConfigError


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor, class_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean (class-weighted, if given) cross-entropy; labels equal to ``IGNORE_LABEL`` are skipped."""
    return F.cross_entropy(logits, labels, weight=class_weights, ignore_index=IGNORE_LABEL)


def dsc_loss(logits: torch.Tensor, labels: torch.Tensor, alpha: float = 1.5, gamma: float = 0.5) -> torch.Tensor:
    """Self-adjusting Dice loss (Li et al., ACL 2020) as coded in MultiEMO/SpikEmo.

    With ``p`` the softmax probability of the gold class, ``p̃ = (1 − p)^α · p`` and ``y = 1``::

        loss = mean_n [ 1 − (2 p̃ y + γ) / (p̃ + y + γ) ]

    The factor ``(1 − p)^α`` down-weights easy (confident) examples; ``γ`` smooths the ratio.
    Only the gold-class term enters, as in the reference.
    """
    p = torch.softmax(logits, dim=-1).gather(-1, labels[:, None]).squeeze(-1)
    p_tilde = (1 - p) ** alpha * p
    return (1 - (2 * p_tilde + gamma) / (p_tilde + 1 + gamma)).mean()


def soft_hgr_loss(feats: Sequence[torch.Tensor]) -> torch.Tensor:
    """Negative soft-HGR maximal correlation (Wang et al., AAAI 2019), summed over modality pairs.

    For each pair ``(f, g)`` of ``[N, D]`` features, centred over the batch (``f ← f − mean f``)::

        −E[fᵀ g] + ½ tr(cov(f) cov(g)),   E[fᵀ g] = Σ_n f_nᵀ g_n / (N − 1),   cov(f) = fᵀ f / (N − 1)

    (``E[fᵀg]`` of centred features is the trace of the cross-covariance, estimated with the same
    ``N − 1``.) Minimising it maximises the soft-HGR correlation. The covariances are ``D × D``
    over features; the reference code's ``torch.cov`` on ``N × D`` gave an ``N × N`` matrix over
    samples, without centring (RESEARCH §3). With fewer than two samples the covariance is
    undefined and the loss is zero (still attached to the graph).
    """
    if len(feats) < 2:
        raise ValueError(f"soft-HGR needs at least two modalities; got {len(feats)}")
    shapes = {tuple(f.shape) for f in feats}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise DataError(f"soft-HGR needs [N, D] features of one shape; got {[tuple(f.shape) for f in feats]}")
    n = feats[0].shape[0]
    if n < 2:
        return sum(f.sum() for f in feats) * 0.0
    centred = [f - f.mean(0, keepdim=True) for f in feats]
    covs = [f.T @ f / (n - 1) for f in centred]
    loss = feats[0].new_zeros(())
    for i, j in combinations(range(len(feats)), 2):
        correlation = (centred[i] * centred[j]).sum() / (n - 1)
        loss = loss - correlation + 0.5 * (covs[i] * covs[j].T).sum()  # tr(A B) = Σ A ⊙ Bᵀ
    return loss


def inter_class_contrastive_loss(
    features: torch.Tensor,
    labels: torch.Tensor,
    temperature: float = 0.1,
    focal_gamma: float = 0.0,
    class_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Supervised contrastive loss (Khosla et al., NeurIPS 2020, ``L_out``), optionally difficulty-weighted.

    Features are L2-normalised, ``z``. For anchor ``i`` with positives ``P(i)`` (same label, ``≠ i``)::

        P_ip  = exp(z_i·z_p / τ) / Σ_{a ≠ i} exp(z_i·z_a / τ)
        ℓ_i   = −1/|P(i)| Σ_{p ∈ P(i)} (1 − P_ip)^γ · log P_ip
        loss  = Σ_i w_i ℓ_i / Σ_i w_i      over anchors with at least one positive

    ``γ = focal_gamma = 0`` and no ``class_weights`` (``w_i = 1``) is plain SupCon. ``γ > 0``
    down-weights pairs that are already close (easy) — the "focal" part of MultiEMO's
    sample-weighted focal contrastive loss; ``class_weights`` (``w_i = class_weights[y_i]``) is
    its "sample-weighted" part, favouring minority-class anchors. A batch where no anchor has a
    positive gives zero (attached to the graph).
    """
    n = features.shape[0]
    z = F.normalize(features, dim=-1)
    logits = z @ z.T / temperature
    self_mask = torch.eye(n, dtype=torch.bool, device=features.device)
    log_prob = logits.masked_fill(self_mask, float("-inf")).log_softmax(dim=-1).masked_fill(self_mask, 0.0)
    positives = (labels[:, None] == labels[None, :]) & ~self_mask
    n_pos = positives.sum(-1)
    anchors = n_pos > 0
    if not anchors.any():
        return features.sum() * 0.0
    pair_loss = -log_prob
    if focal_gamma:
        pair_loss = pair_loss * (1 - log_prob.exp()) ** focal_gamma
    per_anchor = (pair_loss * positives).sum(-1)[anchors] / n_pos[anchors]
    weights = class_weights[labels[anchors]] if class_weights is not None else torch.ones_like(per_anchor)
    return (weights * per_anchor).sum() / weights.sum()


def rate_penalty(rate: torch.Tensor, target: float) -> torch.Tensor:
    r"""The spike budget: :math:`\max(0, r - r^*)^2` for the mean firing rate r of the last forward
    (:func:`neuro_erc.snn.rates.mean_firing_rate`) and the budget :math:`r^*`; given one rate
    per population (``loss.rate_per_layer``, :func:`~neuro_erc.snn.rates.population_rates`),
    the mean of that term over them.

    One-sided on purpose: it is a budget, not a set point. Below it the task loss alone decides
    how much to fire (a two-sided :math:`(r - r^*)^2` would push a sparse model to fire *more*);
    above it the pull grows with the overshoot. Squared, so it is smooth at the budget. By
    default one mean over every population: the model may spend its spikes where they help.
    Per layer, every population is held to the budget on its own: a small population whose
    spikes fan out to many synapses (the stream model's input encoder drives q, k, v and the
    MLP) weighs little in the mean, yet its spikes are the costly ones (docs/results.md §12).
    Per synapse (``loss.rate_per_synapse``), r is the mean weighted by each population's
    fan-out (:func:`~neuro_erc.snn.rates.mean_firing_rate`): synaptic events per synapse per
    step, so the budget is on synaptic operations — on energy — and a costly spike costs more.
    """
    return torch.relu(rate - target).square().mean()


def class_weights_from_counts(counts: Sequence[int] | np.ndarray | torch.Tensor) -> torch.Tensor:
    """Inverse-frequency class weights ``w_c = N / (K · n_c)`` (float32 ``[C]``).

    ``N`` = total count, ``K`` = number of classes with ``n_c > 0``. Normalised so the mean
    weight per training sample is 1 (``Σ_c n_c w_c = N``): a weighted loss keeps the unweighted
    scale. Classes with no samples get weight 0 (they never occur as a training label).
    """
    counts = torch.as_tensor(np.asarray(counts), dtype=torch.float64)
    if counts.dim() != 1 or (counts < 0).any() or counts.sum() <= 0:
        raise DataError(f"class counts must be a 1-D list of non-negative numbers with a positive sum; got {counts.tolist()}")
    present = counts > 0
    weights = torch.zeros_like(counts)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights.float()


@dataclass
class LossConfig:
    """Weights of the loss terms (0 = off and not computed) and their parameters.

    Defaults are cross-entropy alone, which is what the SpikEmo code trains with (RESEARCH §3).
    ``class_weights``: weight the CE and the contrastive anchors by the class weights passed to
    ``total_loss``. ``rate``: weight of the spike budget :func:`rate_penalty` (0 = off), whose
    budget is ``rate_target`` (spikes per neuron per step), on the mean rate or, with
    ``rate_per_layer``, on each population's, or with ``rate_per_synapse`` on synaptic events
    per synapse per step; with a budget, ``best.pt`` is the best dev epoch among those whose
    dev rate (of the same kind) is within it (``train.selection_key``).
    """

    ce: float = 1.0
    dsc: float = 0.0
    hgr: float = 0.0
    contrastive: float = 0.0
    dsc_alpha: float = 1.5
    dsc_gamma: float = 0.5
    contrastive_temperature: float = 0.1
    contrastive_focal_gamma: float = 0.0
    class_weights: bool = False
    rate: float = 0.0
    rate_target: float = 0.05
    rate_per_layer: bool = False
    rate_per_synapse: bool = False

    def __post_init__(self) -> None:
        weights = {"ce": self.ce, "dsc": self.dsc, "hgr": self.hgr, "contrastive": self.contrastive}
        for key in (*weights, "dsc_alpha", "dsc_gamma", "contrastive_focal_gamma", "rate"):
            check_range(key, getattr(self, key), ge=0)
        check_range("rate_target", self.rate_target, ge=0, le=1)
        require(not (self.rate_per_layer and self.rate_per_synapse), "loss.rate_per_synapse",
                "false with loss.rate_per_layer (one budget: per population, or per synapse)", self.rate_per_synapse)
        if not any(weights.values()):
            raise ConfigError(f"at least one loss weight must be > 0; got {weights}")
        check_range("contrastive_temperature", self.contrastive_temperature, gt=0)


def total_loss(
    cfg: LossConfig,
    logits: torch.Tensor,
    labels: torch.Tensor,
    modality_feats: dict[str, torch.Tensor] | Sequence[torch.Tensor] = (),
    fused_feats: torch.Tensor | None = None,
    class_weights: torch.Tensor | None = None,
    firing_rate: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """``Σ_k w_k · term_k`` over the enabled terms; returns ``(loss, parts)``.

    ``parts`` holds each enabled term's unweighted value under its name (``ce``, ``dsc``, ``hgr``,
    ``contrastive``) and the weighted sum under ``total``. Soft-HGR uses ``modality_feats``
    (``[N, D]`` each); the contrastive term uses ``fused_feats [N, H]``. ``class_weights [C]``
    is required when ``cfg.class_weights`` is set; ``firing_rate`` (the model's differentiable
    mean rate, its populations' rates with ``cfg.rate_per_layer``, its synaptic rate with
    ``cfg.rate_per_synapse``) when ``cfg.rate`` is, and
    its penalty is the part ``rate``.
    """
    if logits.dim() != 2 or labels.shape != logits.shape[:1]:
        raise DataError(f"expected logits [N, C] and labels [N]; got {tuple(logits.shape)} and {tuple(labels.shape)}")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= logits.shape[1]):
        raise DataError(
            f"labels must lie in 0..{logits.shape[1] - 1} (remove padding first); got {labels.min().item()}..{labels.max().item()}"
        )
    if cfg.class_weights and class_weights is None:
        raise ValueError("LossConfig.class_weights is set but no class_weights tensor was given")
    weights = class_weights.to(logits.device, logits.dtype) if cfg.class_weights else None
    terms: dict[str, torch.Tensor] = {}
    if cfg.ce:
        terms["ce"] = cross_entropy(logits, labels, weights)
    if cfg.dsc:
        terms["dsc"] = dsc_loss(logits, labels, cfg.dsc_alpha, cfg.dsc_gamma)
    if cfg.hgr:
        feats = list(modality_feats.values()) if isinstance(modality_feats, dict) else list(modality_feats)
        terms["hgr"] = soft_hgr_loss(feats)
    if cfg.contrastive:
        if fused_feats is None:
            raise ValueError("the contrastive term is enabled but no fused_feats were given")
        terms["contrastive"] = inter_class_contrastive_loss(
            fused_feats, labels, cfg.contrastive_temperature, cfg.contrastive_focal_gamma, weights
        )
    if cfg.rate:
        if firing_rate is None:
            raise ConfigError("loss.rate > 0 but the model has no spiking populations to budget "
                              "(arch 'bigru', or model.dswa false)")
        terms["rate"] = rate_penalty(firing_rate, cfg.rate_target)
    cfg_weights = {"ce": cfg.ce, "dsc": cfg.dsc, "hgr": cfg.hgr, "contrastive": cfg.contrastive, "rate": cfg.rate}
    loss = sum(cfg_weights[k] * v for k, v in terms.items())
    parts = {k: float(v.detach()) for k, v in terms.items()}
    parts["total"] = float(loss.detach())
    return loss, parts
