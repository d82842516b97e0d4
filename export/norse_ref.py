"""Every spike of a ``SpikingCore`` forward in Norse, named like the exported graph's nodes.

LIF layers are recorded with forward hooks (their module names are the NIR node names); an
``and`` step is the product of its two recorded operands (broadcast over utterances where one
has a single "utterance"), which is exactly what the core computes. Per dialogue, spikes are
cut to its real utterances and put in the graph's (channels, utterances) layout.
"""
from __future__ import annotations

import numpy as np
import torch

from neuro_erc.snn.core import SpikingCore
from neuro_erc.snn.lif import LIF


@torch.no_grad()
def record_core(core: SpikingCore, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Run ``core`` on ``x [L, B, D_in]``; return (output [T, L, B, D], {node: spikes [T, L|1, B, C]})."""
    spikes: dict[str, torch.Tensor] = {}
    hooks = [module.register_forward_hook(lambda _m, _i, out, name=name: spikes.__setitem__(name, out.detach()))
             for name, module in core.named_modules() if isinstance(module, LIF)]
    try:
        output = core(x, mask)
    finally:
        for hook in hooks:
            hook.remove()
    for info in core.describe():
        if info.kind == "and":
            a, b = (spikes[name] for name in info.inputs)
            spikes[info.name] = a * b
    return output, spikes


def dialogue_spikes(spikes: dict[str, torch.Tensor], index: int, length: int) -> dict[str, np.ndarray]:
    """Dialogue ``index``'s spikes, real utterances only, as ``{node: [T, C, L or 1]}``."""
    return {name: s[:, : min(length, s.shape[1]), index].permute(0, 2, 1).cpu().numpy() for name, s in spikes.items()}
