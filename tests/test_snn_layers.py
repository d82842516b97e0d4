"""The typed dataflow listing: every consumer handles every kind, the counter uses the declared
input type, and the size model's hops and relays follow from the listing."""
import pytest
import torch
from torch import nn

from neuro_erc.energy import CoreCounter
from neuro_erc.energy.counting import PRODUCTS
from neuro_erc.export.nir_graph import _Builder
from neuro_erc.export.size_model import _sdsa_hops, spike_hops
from neuro_erc.snn import layers
from neuro_erc.snn.core import CoreConfig, SpikingCore
from neuro_erc.snn.neuron import NeuronParams


@pytest.mark.parametrize("table", [_Builder.MAPPINGS, PRODUCTS], ids=["nir", "energy"])
def test_every_kind_has_an_entry_in_each_consumer_table(table):
    assert set(table) == set(layers.KINDS)


def test_linear_input_type_is_checked_and_typed():
    info = layers.Linear("fc", ("input",), 3, 2, "counts")
    assert info.input_type is layers.InputType.COUNTS and info.input_type.events
    with pytest.raises(ValueError, match="'pulses'"):
        layers.Linear("fc", ("input",), 3, 2, "pulses")


class Declared(nn.Module):
    """One Linear whose input type its listing declares."""

    def __init__(self, input_type):
        super().__init__()
        self.fc = nn.Linear(3, 2)
        self.input_type = input_type

    def forward(self, x, mask):
        return self.fc(x)

    def describe(self):
        return [layers.Linear("fc", ("input",), 3, 2, self.input_type, module=self.fc)]


def test_counter_uses_the_declared_input_type_not_the_values():
    mask = torch.ones(2, 1, dtype=torch.bool)
    integers = torch.ones(4, 2, 1, 3)  # spike-like values, declared analog: MACs, not synaptic ops
    with CoreCounter(Declared("analog")) as counter:
        counter.core(integers, mask)
    fc = counter.counts.layers["fc"]
    assert (fc.macs, fc.sops) == (4 * 2 * 3 * 2, 0)
    with pytest.raises(ValueError, match="fc: declared 'spikes' input"), CoreCounter(Declared("spikes")) as counter:
        counter.core(torch.full((4, 2, 1, 3), 0.5), mask)


def test_spiking_core_encoder_is_analog_even_on_integer_features():
    cfg = CoreConfig(dim=8, depth=1, mlp_ratio=2, T=3, norm="none", neuron=NeuronParams(v_th=0.05))
    core = SpikingCore(6, cfg).eval()
    mask = torch.ones(3, 2, dtype=torch.bool)
    with torch.no_grad(), CoreCounter(core) as counter:
        core(torch.ones(3, 2, 6), mask)
    encoder = counter.counts.layers["encoder.linear"]
    assert (encoder.macs, encoder.held_macs, encoder.sops) == (6 * 8 * 6, 6 * 8 * 6, 0)


def test_hops_and_relays_of_a_hand_made_listing():
    n = NeuronParams()
    steps = [layers.Linear("a.linear", ("input",), 1, 1, "analog"), layers.LIF("a", ("a.linear",), 1, n),
             layers.Linear("b.linear", ("a",), 1, 1, "spikes"), layers.LIF("b", ("b.linear",), 1, n),
             layers.Linear("c.linear", ("b",), 1, 1, "spikes"), layers.LIF("c", ("c.linear",), 1, n),
             layers.Residual("s", ("a", "c"), 1), layers.Linear("d.linear", ("s",), 1, 1, "counts"),
             layers.LIF("d", ("d.linear",), 1, n)]
    hops, relays = spike_hops(steps)
    assert hops == {"a": 0, "b": 1, "c": 2, "d": 3}
    assert relays == {"a": 2, "b": 0, "c": 0}  # a reaches d (hop 3) through 2 relays


@pytest.mark.parametrize("depth", range(1, 7))
def test_sdsa_hops_from_the_listing_match_the_hand_derivation(depth):
    """7 hops per block; relays: encoder 7·depth − 2, Q 2 per block, O and MLP2 of block b
    7(depth−1−b) and 7(depth−1−b) − 2 (see ``size_model.relay_stages``)."""
    relays = 7 * depth - 2 + 2 * depth + sum(7 * (depth - 1 - b) + max(7 * (depth - 1 - b) - 2, 0) for b in range(depth))
    assert _sdsa_hops(depth) == (7 * depth, relays)
