r"""Energy per utterance from operation counts, under the 45 nm CMOS model and under Loihi.

With counts summed over the spiking cores of every modality and divided by the real
utterances (each utterance passes through every core once):

.. math::
    E_{45nm} &= E_{MAC}\,\mathrm{MAC} + E_{AC}\,\mathrm{SOP}_{exact}
        &&\text{(``energy_uj_45nm``, exact counts)}\\
    E_{45nm}^{conv} &= E_{MAC}\,\mathrm{MAC} + E_{AC}\,\mathrm{SOP}_{fr\cdot T\cdot FLOPs}
        &&\text{(``energy_uj_45nm_convention``)}\\
    E_{45nm}^{+neur} &= E_{45nm} + (E_{MAC} + E_{AC})\,N_{steps}
        &&\text{(LIF update } v \leftarrow v + a(I - v)\text{: one multiply, two adds)}\\
    E_{Loihi} &= 23.6\,\mathrm{SOP}_{exact} + 81\,N^{active}_{steps} + 52\,N^{inactive}_{steps}
        + 1.7\,\mathrm{spikes} + E_{MAC}\,\mathrm{MAC} \\
    E_{ANN} &= E_{MAC}\,\mathrm{MAC}_{ANN}

The 45 nm figures follow Spikformer / Spike-driven Transformer, which charge synaptic
operations and the analog first layer and not the neuron updates; ``+neur`` adds them. On
Loihi every spike×spike coincidence is charged as one synaptic operation (a lower bound: an
AND gate there is a neuron too), and the MACs (the encoder's; LayerNorm's with
``norm="layer"``), which Loihi cannot do, are charged at the 45 nm MAC energy (host). A
neuron-step is *active* when its input current is non-zero. The ANN twin is the same core with LIF replaced by ReLU, run once (no T), every
product a real multiplication and BatchNorm folded: its MACs are the one-pass FLOPs counted
layer by layer (:mod:`neuro_erc.energy.counting`); ReLU is charged nothing.

The encoder is charged once (it runs once on a current held constant over T); if it were
recomputed every step (some papers charge the first layer T times) the 45 nm energy would
grow by :math:`(T-1)\,E_{MAC}\,\mathrm{MAC}_{held}` (the MACs computed once and held over
T): ``energy_uj_45nm_encoder_per_step`` reports that variant.
"""
from __future__ import annotations

from typing import Mapping

from .constants import LOIHI, PJ_PER_UJ, LoihiEnergy, cmos
from .counting import CoreCounts, LayerCount


def per_utterance(counts: Mapping[str, CoreCounts]) -> dict[str, float]:
    """Totals per real utterance, summed over the cores (one per modality)."""
    out: dict[str, float] = {}
    for core in counts.values():
        if core.utterances == 0:
            continue
        total = core.total()
        for key in ("spikes", "neuron_steps", "active_neuron_steps", "sops", "sops_convention", "macs", "held_macs", "ann_macs"):
            out[key] = out.get(key, 0.0) + getattr(total, key) / core.utterances
    return out


def energy(per_utt: Mapping[str, float], T: int, precision: str = "fp32", loihi: LoihiEnergy = LOIHI) -> dict[str, float]:
    """Energy (µJ per utterance) from :func:`per_utterance` totals; see the module docstring."""
    e = cmos(precision)
    macs_pj = e.mac_pj * per_utt["macs"]
    inactive = per_utt["neuron_steps"] - per_utt["active_neuron_steps"]
    pj = {
        "energy_uj_45nm": macs_pj + e.ac_pj * per_utt["sops"],
        "energy_uj_45nm_convention": macs_pj + e.ac_pj * per_utt["sops_convention"],
        "energy_uj_45nm_with_neurons": macs_pj + e.ac_pj * per_utt["sops"] + (e.mac_pj + e.ac_pj) * per_utt["neuron_steps"],
        "energy_uj_45nm_encoder_per_step": macs_pj + (T - 1) * e.mac_pj * per_utt["held_macs"] + e.ac_pj * per_utt["sops"],
        "energy_uj_loihi": loihi.synaptic_op_pj * per_utt["sops"]
        + loihi.neuron_update_active_pj * per_utt["active_neuron_steps"]
        + loihi.neuron_update_inactive_pj * inactive
        + loihi.spike_in_tile_pj * per_utt["spikes"]
        + macs_pj,
        "ann_energy_uj_45nm": e.mac_pj * per_utt["ann_macs"],
    }
    return {k: v / PJ_PER_UJ for k, v in pj.items()}


def layer_table(counts: Mapping[str, CoreCounts]) -> list[dict]:
    """One row per layer of every core (modality-prefixed name), per utterance, for reports."""
    rows = []
    for m, core in counts.items():
        for layer in core.layers.values():
            rows.append(_layer_row(f"{m}.{layer.name}", layer, core.utterances))
    return rows


def _layer_row(name: str, layer: LayerCount, utterances: int) -> dict:
    u = max(utterances, 1)
    return {
        "layer": name,
        "kind": layer.kind,
        "firing_rate": layer.firing_rate,
        "spikes_per_utterance": layer.spikes / u,
        "sops_per_utterance": layer.sops / u,
        "sops_convention_per_utterance": layer.sops_convention / u,
        "macs_per_utterance": layer.macs / u,
        "ann_macs_per_utterance": layer.ann_macs / u,
    }
