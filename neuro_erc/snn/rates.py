"""The mean firing rate of a model's last forward pass, differentiable: what the spike budget
(``loss.rate``, :func:`neuro_erc.losses.rate_penalty`) penalises.

It is the rate the bench reports (``firing_rate``): all spikes over all neuron-steps of every
spiking population at real utterances — SpikEmo's core :class:`~neuro_erc.snn.lif.LIF` layers,
the stream model's box LIF and CubaLIF populations; the readout's leaky integrators do not
spike and are left out. Weighting by neuron-steps makes it proportional to the spikes, which
is what synaptic operations and energy scale with.
"""
from __future__ import annotations

import torch
from torch import nn

from .lif import LIF
from .stateful import BoxLIF, CubaLIF


def spiking_populations(model: nn.Module) -> list[nn.Module]:
    """``model``'s spiking populations that took part in its last forward."""
    return [m for m in model.modules() if isinstance(m, (LIF, BoxLIF, CubaLIF)) and m.last_spike_sum is not None]


def population_counts(model: nn.Module) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Spikes and neuron-steps of each of ``model``'s spiking populations in its last forward,
    two ``[P]`` tensors, the spikes differentiable (None without any population)."""
    populations = spiking_populations(model)
    if not populations:
        return None
    spikes = torch.stack([m.last_spike_sum for m in populations])
    steps = torch.stack([torch.as_tensor(m.last_neuron_steps, dtype=spikes.dtype, device=spikes.device)
                         for m in populations])
    return spikes, steps


def mean_firing_rate(model: nn.Module) -> torch.Tensor | None:
    """Spikes / neuron-steps over ``model``'s spiking populations in its last forward (None without any)."""
    counts = population_counts(model)
    if counts is None:
        return None
    spikes, steps = counts
    return spikes.sum() / steps.sum().clamp(min=1)


def population_rates(model: nn.Module) -> torch.Tensor | None:
    """Each spiking population's spikes / neuron-steps in ``model``'s last forward, ``[P]``,
    differentiable (None without any): the per-layer spike budget's input."""
    counts = population_counts(model)
    if counts is None:
        return None
    spikes, steps = counts
    return spikes / steps.clamp(min=1)


class SplitFiringRate:
    """The mean firing rate over many forward passes (the batches of a split): spikes and
    neuron-steps summed across them, weighted as :func:`mean_firing_rate` weights one pass.
    ``add(model)`` after each forward; ``rate`` is None for a model that has no spikes."""

    def __init__(self):
        self.spikes, self.neuron_steps = 0.0, 0.0

    def add(self, model: nn.Module) -> None:
        counts = population_counts(model)
        if counts is not None:
            spikes, steps = counts
            self.spikes += float(spikes.detach().sum())
            self.neuron_steps += float(steps.sum())

    @property
    def rate(self) -> float | None:
        return self.spikes / self.neuron_steps if self.neuron_steps else None
