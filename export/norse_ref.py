r"""The exported network in Norse, and every spike (and input current) of a forward, named like the graph's nodes.

:func:`exported_core` is the network the export reproduces, run by Norse: the core with batch
norm folded into its Linears (``SpikingCore.folded()``), the weights of :func:`~.nir_graph.exported_affines`,
and each Linear an :class:`ExactLinear`, whose current is the exact sum rounded once to float32
(:mod:`.exact_sums`) — the number the numpy simulator and Lava compute too. The LIF steps are
Norse's own. A float32 ``nn.Linear`` sums in an order that BLAS chooses (by CPU and matrix
shape), which nothing else can reproduce bit for bit.

LIF layers are recorded with forward hooks (their module names are the NIR node names); an
:class:`~neuro_erc.snn.layers.And` step is the product of its two recorded operands (broadcast
over utterances where one has a single "utterance"), which is exactly what the core computes. Per dialogue, spikes are
cut to its real utterances and put in the graph's (channels, utterances) layout.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from neuro_erc.snn import layers
from neuro_erc.snn.blocks import SpikingLayer
from neuro_erc.snn.core import SpikingCore
from neuro_erc.snn.lif import LIF

from .nir_graph import exported_affines


class ExactLinear(nn.Linear):
    r"""``y = fl32(x Wᵀ + b)``, summed in float64 and rounded once.

    For spike or spike-count inputs and the exported weights the float64 sum is exact
    (:mod:`.exact_sums`), so the result does not depend on how BLAS orders it; for the analog
    input it is the host's current, which the other backends are given rather than recompute.
    """

    def __init__(self, weight: np.ndarray, bias: np.ndarray):
        super().__init__(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            self.weight.copy_(torch.from_numpy(weight))
            self.bias.copy_(torch.from_numpy(bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.bias.double(), x.double(), self.weight.double().t()).float()


def exported_core(core: SpikingCore) -> SpikingCore:
    """An eval-mode copy of ``core`` that computes what its export computes (see the module docstring)."""
    affines, _ = exported_affines(core)
    exported = core.folded()
    for name, layer in exported.named_modules():
        if isinstance(layer, SpikingLayer):
            layer.linear = ExactLinear(*affines[f"{name}.linear"])
    return exported


@torch.no_grad()
def record_core(core: SpikingCore, x: torch.Tensor, mask: torch.Tensor,
                currents: dict[str, torch.Tensor] | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Run ``core`` on ``x [L, B, D_in]``; return (output [T, L, B, D], {node: spikes [T, L|1, B, C]}).

    ``currents``, when given, receives the input current of every layer driven by the analog
    input, ``{its LIF node: [L, B, C]}``, as the forward computed it (for :func:`dialogue_currents`).
    """
    spikes: dict[str, torch.Tensor] = {}
    hooks = [module.register_forward_hook(lambda _m, _i, out, name=name: spikes.__setitem__(name, out.detach()))
             for name, module in core.named_modules() if isinstance(module, LIF)]
    if currents is not None:
        steps = core.layers()
        analog = {info.name: info.module for info in steps
                  if isinstance(info, layers.Linear) and info.input_type is layers.InputType.ANALOG}
        lead = x.shape[:2]
        hooks += [analog[info.inputs[0]].register_forward_hook(
                      lambda _m, _i, out, name=info.name: currents.__setitem__(name, out.detach().view(*lead, -1)))
                  for info in steps if isinstance(info, layers.LIF) and info.inputs[0] in analog]
    try:
        output = core(x, mask)
    finally:
        for hook in hooks:
            hook.remove()
    for info in core.describe():
        if isinstance(info, layers.And):
            a, b = (spikes[name] for name in info.inputs)
            spikes[info.name] = a * b
    return output, spikes


def dialogue_spikes(spikes: dict[str, torch.Tensor], index: int, length: int) -> dict[str, np.ndarray]:
    """Dialogue ``index``'s spikes, real utterances only, as ``{node: [T, C, L or 1]}``."""
    return {name: s[:, : min(length, s.shape[1]), index].permute(0, 2, 1).cpu().numpy() for name, s in spikes.items()}


def dialogue_currents(currents: dict[str, torch.Tensor], index: int, length: int) -> dict[str, np.ndarray]:
    """Dialogue ``index``'s input currents from :func:`record_core`, as ``{node: float32 [C, L]}``."""
    return {name: c[:length, index].T.cpu().numpy() for name, c in currents.items()}
