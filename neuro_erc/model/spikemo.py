"""SpikEmo (Yu, Wang, Qiao): the whole model, read top to bottom.

Per modality m ∈ {t, a, v}:

    F_m = Context_m(Linear_m(x_m))                  projection + dialogue context (host)
    F_m ← F_m + softmax_L(E_m) ⊙ F_m                DSWA: E_m = readout(mean_T(SpikingCore_m(F_m)))
Then
    G = MultiAttn({F_m})                            cross-modal fusion (host)
    logits = MLP(concat_m G_m)

The spiking cores are the only parts that run T time steps; they are what gets exported to
NIR/Lava and counted for energy. ``core_inputs`` exposes exactly what enters each core so a
hybrid run can send that part elsewhere and feed the result back (``forward(core_outputs=...)``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..config import FieldError, check_choice, check_range, require, show
from ..data.batching import Batch
from ..data.types import MODALITIES
from ..snn.core import CoreConfig
from ..snn.dswa import DSWA
from .context import CONTEXT_KINDS, build_context_encoder
from .fusion import Classifier, MultiAttnFusion
from .stream import StreamConfig


@dataclass
class ModelConfig:
    """Architecture. ``input_dims`` and ``n_classes`` come from the dataset."""

    modalities: tuple[str, ...] = ("t", "a", "v")
    input_dims: dict[str, int] = field(default_factory=dict)
    n_classes: int = 7
    dim: int = 256
    context: str = "dialoguernn"  # "dialoguernn" | "bigru" | "none"
    dropout: float = 0.1
    dswa: bool = True  # False = the "no DSWA" ablation
    fusion_layers: int = 2
    fusion_heads: int = 4
    classifier_hidden: int = 256
    core: CoreConfig = field(default_factory=CoreConfig)
    stream: StreamConfig = field(default_factory=StreamConfig)  # arch "stream" only (neuro_erc.model.stream)

    def __post_init__(self) -> None:
        distinct = len(set(self.modalities)) == len(self.modalities)
        require(bool(self.modalities) and distinct and set(self.modalities) <= set(MODALITIES), "modalities",
                f"distinct names among {show(list(MODALITIES))}", list(self.modalities))
        for m, dim in self.input_dims.items():
            check_range(f"input_dims.{m}", dim, ge=1)
        missing = [m for m in self.modalities if m not in self.input_dims]
        if self.input_dims and missing:
            raise FieldError("input_dims", f"no input dimension for modalities {missing}; have {self.input_dims}")
        for key in ("n_classes", "dim", "fusion_heads", "classifier_hidden"):
            check_range(key, getattr(self, key), ge=1)
        check_range("fusion_layers", self.fusion_layers, ge=0)
        require(self.dim % self.fusion_heads == 0, "dim", f"a multiple of fusion_heads ({self.fusion_heads})", self.dim)
        check_choice("context", self.context, CONTEXT_KINDS)
        check_range("dropout", self.dropout, ge=0, lt=1)


@dataclass
class ModelOutput:
    logits: torch.Tensor  # [L, B, C]
    features: dict[str, torch.Tensor]  # m -> [L, B, D], fused per-modality features (for soft-HGR)
    dswa_weights: dict[str, torch.Tensor]  # m -> [L, B, D] softmax weights (empty without DSWA)
    hidden: torch.Tensor  # [L, B, H] classifier hidden features (for the contrastive loss)


class SpikEmo(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.project = nn.ModuleDict({m: nn.Linear(cfg.input_dims[m], cfg.dim) for m in cfg.modalities})
        self.context = nn.ModuleDict(
            {m: build_context_encoder(cfg.context, cfg.dim, cfg.dropout) for m in cfg.modalities}
        )
        self.cores = nn.ModuleDict({m: DSWA(cfg.dim, cfg.core) for m in cfg.modalities}) if cfg.dswa else nn.ModuleDict()
        self.dropout = nn.Dropout(cfg.dropout)
        self.fusion = MultiAttnFusion(cfg.dim, cfg.modalities, layers=cfg.fusion_layers, heads=cfg.fusion_heads, dropout=cfg.dropout)
        self.classifier = Classifier(cfg.dim * len(cfg.modalities), cfg.classifier_hidden, cfg.n_classes, cfg.dropout)

    def core_inputs(self, batch: Batch) -> dict[str, torch.Tensor]:
        """What enters each modality's spiking core: projected, contextualised features [L, B, D]."""
        return {
            m: self.context[m](self.dropout(self.project[m](batch.features[m])), batch.mask, batch.speakers)
            for m in self.cfg.modalities
        }

    def forward(self, batch: Batch, core_outputs: dict[str, torch.Tensor] | None = None) -> ModelOutput:
        """``core_outputs`` (m -> core output [T, L, B, D]) replaces running the cores here."""
        feats = self.core_inputs(batch)
        weights = {}
        for m, dswa in self.cores.items():
            given = None if core_outputs is None else core_outputs[m]
            feats[m], weights[m] = dswa(feats[m], batch.mask, core_output=given)
        fused = self.fusion(feats, batch.mask)
        logits, hidden = self.classifier.forward_with_features(torch.cat([fused[m] for m in self.cfg.modalities], dim=-1))
        return ModelOutput(logits, fused, weights, hidden)

    def firing_rates(self) -> dict[str, float]:
        """Per-layer firing rates of the last forward pass, keyed ``<modality>.<layer>``."""
        return {f"{m}.{k}": v for m, dswa in self.cores.items() for k, v in dswa.core.last_firing_rates.items()}
