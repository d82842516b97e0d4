r"""DSWA, the dynamic spiking weight assignment of SpikEmo: a spiking core weighs each channel of
each utterance against the other utterances of its dialogue.

.. math::
    S &= \mathrm{SpikingCore}(F) \in \mathbb{Z}^{T \times L \times B \times D} \\
    E &= \mathrm{LayerNorm}\big(\tfrac1T \textstyle\sum_t S_t\big) \qquad \text{(host side)} \\
    W_{l,b,c} &= \frac{\exp E_{l,b,c}}{\sum_{l'\ \mathrm{real}} \exp E_{l',b,c}}
        \qquad \text{(padded } l \text{ get } W = 0\text{)} \\
    F' &= F + W \odot F

The readout is a LayerNorm over channels (with affine γ, β) of the time-averaged output: like
the reference's LayerNorm before the mean over T, it makes each utterance's scores comparable
whatever the core's firing level; mean over T first keeps it out of the per-step (exported)
part. If the core is narrower or wider than ``F``, a Linear maps it to ``F``'s width.
Unlike the reference, padding takes no softmax weight. The "no DSWA" ablation is the model's
business (it does not build this module).
"""
from __future__ import annotations

import torch
from torch import nn

from .core import CoreConfig, SpikingCore


class DSWA(nn.Module):
    """``forward(F [L, B, D], mask [L, B]) -> (F + W ⊙ F, W)``.

    ``last_core_output`` holds the core output [T, L, B, D_core] of the last forward (detached).
    """

    def __init__(self, in_dim: int, cfg: CoreConfig):
        super().__init__()
        self.core = SpikingCore(in_dim, cfg)
        self.readout = nn.LayerNorm(cfg.dim)
        self.to_input = nn.Linear(cfg.dim, in_dim) if cfg.dim != in_dim else None
        self.last_core_output: torch.Tensor | None = None

    def forward(self, features: torch.Tensor, mask: torch.Tensor,
                core_output: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``core_output`` [T, L, B, D_core], when given (e.g. computed on Lava), replaces running the core."""
        self.last_core_output = None  # free the previous one before running the core
        output = self.core(features, mask) if core_output is None else core_output
        self.last_core_output = output.detach()
        scores = self.readout(output.mean(dim=0))
        if self.to_input is not None:
            scores = self.to_input(scores)
        weights = torch.softmax(scores.masked_fill(~mask[..., None], float("-inf")), dim=0)
        return features + weights * features, weights
