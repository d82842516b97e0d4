"""The mean firing rate of a model's last forward pass, differentiable: what the spike budget
(``loss.rate``, :func:`neuro_erc.losses.rate_penalty`) penalises.

It is the rate the bench reports (``firing_rate``): all spikes over all neuron-steps of every
spiking population at real utterances — SpikEmo's core :class:`~neuro_erc.snn.lif.LIF` layers,
the stream model's box LIF and CubaLIF populations; the readout's leaky integrators do not
spike and are left out. Weighting by neuron-steps makes it proportional to the spikes.

Synaptic operations, and with them most of the energy, scale with spikes *times the synapses
each drives*: ``per_synapse`` weights every population's spikes and neuron-steps by its
declared ``synapses_per_spike``, which turns the rate into synaptic events per synapse per
step — the synaptic ops of the pass over the most it could do, Dampfhoffer et al.'s "spikes per
synapse" (IEEE TETCI 2023) per step.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from .lif import LIF
from .stateful import BoxLIF, CubaLIF


SPIKING_POPULATIONS = (LIF, BoxLIF, CubaLIF)


def spiking_populations(model: nn.Module) -> list[nn.Module]:
    """``model``'s spiking populations that took part in its last forward."""
    return [m for m in model.modules() if isinstance(m, SPIKING_POPULATIONS) and m.last_spike_sum is not None]


def declares_synapses(model: nn.Module) -> bool:
    """Whether every spiking population of ``model`` declares its ``synapses_per_spike``."""
    populations = [m for m in model.modules() if isinstance(m, SPIKING_POPULATIONS)]
    return bool(populations) and all(m.synapses_per_spike is not None for m in populations)


def population_counts(model: nn.Module, per_synapse: bool = False) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Spikes and neuron-steps of each of ``model``'s spiking populations in its last forward,
    two ``[P]`` tensors, the spikes differentiable (None without any population); with
    ``per_synapse`` both times the population's ``synapses_per_spike``: synaptic events and
    synapse-steps (a ConfigError where a population does not declare it)."""
    populations = spiking_populations(model)
    if not populations:
        return None
    spikes = torch.stack([m.last_spike_sum for m in populations])
    steps = torch.stack([torch.as_tensor(m.last_neuron_steps, dtype=spikes.dtype, device=spikes.device)
                         for m in populations])
    if per_synapse:
        if not declares_synapses(model):
            raise ConfigError(f"a spike budget per synapse (loss.rate_per_synapse) needs every spiking population's "
                              f"fan-out; {type(model).__name__} does not declare it (the stream model does: arch 'stream')")
        synapses = torch.tensor([m.synapses_per_spike for m in populations], dtype=spikes.dtype, device=spikes.device)
        spikes, steps = spikes * synapses, steps * synapses
    return spikes, steps


def mean_firing_rate(model: nn.Module, per_synapse: bool = False) -> torch.Tensor | None:
    """Spikes / neuron-steps over ``model``'s spiking populations in its last forward (None
    without any); ``per_synapse``: synaptic events / synapse-steps."""
    counts = population_counts(model, per_synapse)
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
    ``add(model)`` after each forward; ``rate`` is None for a model that has no spikes, and
    ``synaptic_rate`` (the per-synapse rate) also for one whose populations do not declare
    their fan-out."""

    def __init__(self):
        self.spikes, self.neuron_steps = 0.0, 0.0
        self.events, self.synapse_steps = 0.0, 0.0

    def add(self, model: nn.Module) -> None:
        counts = population_counts(model)
        if counts is None:
            return
        spikes, steps = counts
        self.spikes += float(spikes.detach().sum())
        self.neuron_steps += float(steps.sum())
        if declares_synapses(model):
            events, synapse_steps = population_counts(model, per_synapse=True)
            self.events += float(events.detach().sum())
            self.synapse_steps += float(synapse_steps.sum())

    @property
    def rate(self) -> float | None:
        return self.spikes / self.neuron_steps if self.neuron_steps else None

    @property
    def synaptic_rate(self) -> float | None:
        return self.events / self.synapse_steps if self.synapse_steps else None
