"""Multimodal fusion (MultiAttn, from MultiEMO — Shi & Huang, ACL 2023) and the classifier head.

MultiAttn: each modality, as the query, attends the other modalities in turn over the
utterances of the dialogue. One layer for query modality ``m`` with others ``(A, B)``::

    h = LayerNorm(x_m + Dropout(MHA(x_m, A, A)))       # cross-attention to A, Add&Norm
    h = LayerNorm(h   + Dropout(MHA(h,   B, B)))       # cross-attention to B, Add&Norm
    h = LayerNorm(h   + Dropout(FFN(h)))               # FFN D → 4D → D (ReLU), Add&Norm

``N`` layers are stacked per modality; every layer attends the *input* features of the other
modalities (as in the reference). With ``("t", "a", "v")`` the order is the reference's: text
attends audio then visual, audio attends text then visual, visual attends text then audio.
Unlike the reference, attention takes a key padding mask, so padded utterances are never attended.
With two modalities each attends the other once per layer; with one there is nothing to attend
and the fusion is the identity.
"""
from __future__ import annotations

import torch
from torch import nn

from ..data.types import DataError
from ..errors import ConfigError


class _AddNorm(nn.Module):
    """``LayerNorm(x + Dropout(y))``."""

    def __init__(self, dim: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.norm(x + self.dropout(y))


class MultiAttnLayer(nn.Module):
    """One MultiAttn layer: a cross-attention + Add&Norm per other modality, then FFN + Add&Norm."""

    def __init__(self, dim: int, n_others: int, heads: int, dropout: float):
        super().__init__()
        self.attns = nn.ModuleList(nn.MultiheadAttention(dim, heads) for _ in range(n_others))
        self.attn_norms = nn.ModuleList(_AddNorm(dim, dropout) for _ in range(n_others))
        self.ffn = nn.Sequential(nn.Linear(dim, 4 * dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(4 * dim, dim))
        self.ffn_norm = _AddNorm(dim, dropout)

    def forward(self, query: torch.Tensor, others: list[torch.Tensor], key_padding_mask: torch.Tensor) -> torch.Tensor:
        """``query [L, B, D]``, ``others``: one ``[L, B, D]`` per other modality; mask ``[B, L]``, True = padding."""
        h = query
        for attn, norm, kv in zip(self.attns, self.attn_norms, others):
            h = norm(h, attn(h, kv, kv, key_padding_mask=key_padding_mask, need_weights=False)[0])
        return self.ffn_norm(h, self.ffn(h))


class MultiAttnFusion(nn.Module):
    """MultiAttn fusion over ``modalities``: ``forward(feats {m: [L, B, D]}, mask [L, B]) -> {m: [L, B, D]}``.

    Outputs are zero at padding. The other modalities of ``m`` are taken in the order of
    ``modalities``.
    """

    def __init__(self, dim: int, modalities: tuple[str, ...], layers: int = 2, heads: int = 4, dropout: float = 0.1):
        super().__init__()
        if not modalities or len(set(modalities)) != len(modalities):
            raise ConfigError(f"modalities must be distinct and non-empty; got {modalities}")
        if dim % heads:
            raise ConfigError(f"dim {dim} is not divisible by heads {heads}")
        self.dim, self.modalities = dim, tuple(modalities)
        n_others = len(self.modalities) - 1
        self.stacks = nn.ModuleDict(
            {
                m: nn.ModuleList(MultiAttnLayer(dim, n_others, heads, dropout) for _ in range(layers if n_others else 0))
                for m in self.modalities
            }
        )

    def forward(self, feats: dict[str, torch.Tensor], mask: torch.Tensor) -> dict[str, torch.Tensor]:
        if set(feats) != set(self.modalities):
            raise DataError(f"fusion expects features for modalities {list(self.modalities)}; got {sorted(feats)}")
        for m, x in feats.items():
            if x.dim() != 3 or x.shape[-1] != self.dim or x.shape[:2] != mask.shape:
                raise DataError(
                    f"modality {m!r}: expected [L, B, {self.dim}] with [L, B] = {tuple(mask.shape)}; got {tuple(x.shape)}"
                )
        key_padding_mask = ~mask.T
        out = {}
        for m in self.modalities:
            others = [feats[o] for o in self.modalities if o != m]
            h = feats[m]
            for layer in self.stacks[m]:
                h = layer(h, others, key_padding_mask)
            out[m] = h * mask[..., None]
        return out


class Classifier(nn.Module):
    """``logits = W₂ · Dropout(ReLU(h)) + b₂`` with ``h = W₁ x + b₁`` (``in_dim → hidden → n_classes``).

    The reference head is ``fc: 768 → 256`` then ``MLP: Linear 256 → 256, ReLU, Dropout,
    Linear 256 → classes``; ``fc`` and the MLP's first Linear follow each other with no
    nonlinearity between, so their product is one linear map: ``W₁`` here. ``h`` (the
    reference's "fused features", the input of its contrastive loss) is returned by
    ``forward_with_features``.
    """

    def __init__(self, in_dim: int, hidden: int, n_classes: int, dropout: float):
        super().__init__()
        self.fc = nn.Linear(in_dim, hidden)
        self.head = nn.Sequential(nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, n_classes))

    def forward_with_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(logits [..., n_classes], h [..., hidden])``."""
        h = self.fc(x)
        return self.head(h), h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_features(x)[0]
