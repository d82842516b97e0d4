"""The plain baseline (``--arch bigru``): a speaker-aware BiGRU classifier, nothing spiking.

RESEARCH §2 measured a plain speaker-aware BiGRU (hidden 128, dropout 0.3, CE) over the frozen
MiniLM features (MELD dev 54.7 ± 0.5, IEMOCAP valid 57.2 ± 2.0) and set the bar: SpikEmo must
beat it on the same features, or its spiking machinery has not earned its place. This is that
baseline built from SpikEmo's own host parts, an architecture of its own that trains, evaluates
and is checkpointed like the others, so every results table can list it
(``examples/configs/*_text_bigru.json``: RESEARCH §2's recipe).

Per modality m:

    F_m = SpeakerBiGRU_m(dropout(Linear_m(x_m)))     SpikEmo's host path with context "bigru"
    logits = Linear(concat_m F_m)

``SpeakerBiGRU`` is :mod:`.context`'s ``"bigru"`` encoder (hidden ``dim // 2`` per direction:
128 at the default ``dim`` 256, the baseline's). Up to the context this is exactly SpikEmo's
``core_inputs``; what SpikEmo adds after it — DSWA's spiking cores, cross-modal attention,
the MLP classifier — is absent, so the difference in a table is what they buy.

Config: ``model.context`` must say ``"bigru"`` (it names the part this model has; a config
saying "dialoguernn" would misdescribe the run). The options of parts it lacks (``dswa``,
``core``, ``fusion_*``, ``classifier_hidden``, ``stream``) are unused.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..config import require
from ..data.batching import Batch
from .context import build_context_encoder

if TYPE_CHECKING:
    from .spikemo import ModelConfig

CONTEXT = "bigru"


@dataclass
class BiGRUOutput:
    """What training and evaluation read (the fields of SpikEmo's ``ModelOutput`` they use)."""

    logits: torch.Tensor  # [L, B, C]
    features: dict[str, torch.Tensor]  # m -> [L, B, D]: the modality's context output (soft-HGR)
    hidden: torch.Tensor  # [L, B, M·D]: those, concatenated: what the classifier reads (contrastive loss)


class BiGRUClassifier(nn.Module):
    """Projection → speaker-aware BiGRU per modality → one linear layer over their concatenation."""

    def __init__(self, cfg: "ModelConfig"):
        super().__init__()
        self.cfg = cfg
        self.project = nn.ModuleDict({m: nn.Linear(cfg.input_dims[m], cfg.dim) for m in cfg.modalities})
        self.context = nn.ModuleDict({m: build_context_encoder(CONTEXT, cfg.dim, cfg.dropout) for m in cfg.modalities})
        self.dropout = nn.Dropout(cfg.dropout)
        self.classifier = nn.Linear(cfg.dim * len(cfg.modalities), cfg.n_classes)

    def forward(self, batch: Batch) -> BiGRUOutput:
        feats = {m: self.context[m](self.dropout(self.project[m](batch.features[m])), batch.mask, batch.speakers)
                 for m in self.cfg.modalities}
        hidden = torch.cat([feats[m] for m in self.cfg.modalities], dim=-1)
        # no dropout here: the context already drops the GRU states before its output layer
        return BiGRUOutput(self.classifier(hidden), feats, hidden)

    def firing_rates(self) -> dict[str, float]:
        """None: nothing spikes (the training log's ``firing_rates`` is empty)."""
        return {}


def check_bigru_model(model: "ModelConfig") -> None:
    """Refuse a config that misdescribes the baseline's one context encoder."""
    require(model.context == CONTEXT, "model.context",
            f"{CONTEXT!r} with arch 'bigru' (its context is the speaker-aware BiGRU, and the config must say so: "
            f"\"model\": {{\"context\": \"{CONTEXT}\"}}, as in examples/configs/*_bigru.json)",
            model.context)
