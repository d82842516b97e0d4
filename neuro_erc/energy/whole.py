r"""Whole-model operation counts and energy: every layer of either architecture, memory included.

**What is counted**, per real utterance, from forward hooks during eval-mode passes (nothing of
the model is re-implemented):

* *spiking parts* — SpikEmo's cores (:class:`~neuro_erc.energy.counting.CoreCounter`) or every
  population of the stream model (:class:`StreamCounter`): exact synaptic operations (input
  spikes or spike counts × fan-out; spike×spike coincidences for the ANDs), the MACs of the
  analog input layer (applied once per utterance, held over T), and neuron updates: one per
  state variable per neuron per step (box LIF: v; CubaLIF: i and v; the readout's LI: v);
* *host parts* (:class:`HostCounter`) — SpikEmo's projection, context encoder (GRU/DialogueRNN
  cells, DialogueRNN's attention pool), DSWA readout, cross-modal attention, classifier: MACs
  from the shapes they run on. The host must see unpadded batches (batch size 1), so every
  position it counts is a real utterance. Nonlinearities, softmax and elementwise gating are not
  charged (O(width) against O(width²) MACs); a LayerNorm is 3 MACs per element, as in the core.
  The stream model's host only concatenates the input and reads C integrators per window: no MACs.

**Energy** (pJ → µJ per utterance; figures from :mod:`neuro_erc.energy.constants`, E_w the
energy of one 32-bit memory access):

.. math::
    E_{whole} &= E_{MAC}(\mathrm{MAC}_{host} + \mathrm{MAC}_{core}) + E_{AC}\,\mathrm{SOP}
        + (E_{MAC} + E_{AC})\,N_{upd} \\
    E_{whole}^{mem} &= E_{whole} + E_w(\mathrm{MAC}_{host} + \mathrm{MAC}_{core} + \mathrm{SOP}_{w})
        + 2E_w(A_{host} + N_{upd}) \\
    E_{ANN}^{mem} &= E_{MAC}(\mathrm{MAC}_{host} + \mathrm{MAC}_{ANN})
        + E_w(\mathrm{MAC}_{host} + \mathrm{MAC}_{ANN}) + 2E_w(A_{host} + A_{ANN}) \\
    E_{qANN}^{mem} &= E_{MAC}(\mathrm{MAC}_{host} + \mathrm{MAC}_{in}) + E_{qMAC}(b)(\mathrm{MAC}_{ANN} - \mathrm{MAC}_{in})
        + E_w(\mathrm{MAC}_{host} + \mathrm{MAC}_{ANN}) + 2E_w A_{host} + 2E_b A_{ANN}

:math:`\mathrm{SOP}_w` are the synaptic operations through a weight (a Linear's; an AND reads
none), :math:`N_{upd}` the state-variable updates (each a read and a write), A the activations
a layer writes and the next reads (host layers; the ANN twin's ReLU layers, one pass per
utterance), b = ⌈log₂(T+1)⌉, E_b a b-bit access, and MAC_in the input layer's MACs (its input is
the host's full-precision features, so only the layers after it see b-bit activations). The ANN twin is the same model with its
spiking populations replaced by ReLU layers run once (``ann_macs`` of the counters); its host
parts are the SNN's. The stream model's twin is a trained network (:mod:`neuro_erc.model.ann_twin`,
``bench --ann-twin``) whose layers have exactly these shapes; its two leaky averages (context
and readout state, O(D) elementwise updates per utterance) are not charged. The quantised ANN keeps the host in the SNN's format and quantises what
was spiking. Accumulating a synaptic event into its neuron's input is taken to happen in the
neuron's state (charged in its update), not as a separate memory access: a lower bound.
"""
from __future__ import annotations

from contextlib import ExitStack
from typing import Callable, Iterable, Mapping

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from ..model.context import _DialogueRNNPass
from ..snn.stateful import BoxLIF, CubaLIF
from .constants import MEMORY, PJ_PER_UJ, MemoryEnergy, cmos, qmac_pj, quantised_bits
from .counting import PRODUCT_KINDS, CoreCounter, CoreCounts, _is_events, products_of

STATE_VARIABLES = {"lif": 1, "cubalif": 2, "li": 1}
"""State variables read and written at every update of a neuron of each population kind."""
SPIKING_KINDS = ("lif", "cubalif")
WEIGHTED_KINDS = ("linear",)
"""Layer kinds whose synaptic operations read a weight (products of two spike trains do not)."""


# ---- host parts (MACs from shapes) ---------------------------------------------------------------


class HostCounter:
    """Context manager: MACs and activations of ``model``'s non-spiking modules (every Linear, GRU,
    GRUCell, MultiheadAttention, LayerNorm and DialogueRNN attention pool outside ``exclude``),
    per forward ``model(batch)``; batches must be unpadded (``batch.mask`` all True)."""

    def __init__(self, model: nn.Module, exclude: Iterable[nn.Module] = ()):
        self.model = model
        skip = {id(m) for root in exclude for m in root.modules()}
        for module in model.modules():
            if isinstance(module, nn.MultiheadAttention):  # its projections run inside its own forward
                skip |= {id(m) for m in module.modules() if m is not module}
        self._modules = [(n, m) for n, m in model.named_modules() if id(m) not in skip]
        self.counts = CoreCounts()
        self._handles: list = []

    def __enter__(self) -> "HostCounter":
        self._handles.append(self.model.register_forward_pre_hook(self._on_model))
        kinds = ((nn.Linear, self._linear), (nn.GRU, self._gru), (nn.GRUCell, self._gru_cell),
                 (nn.MultiheadAttention, self._attention), (nn.LayerNorm, self._layernorm),
                 (_DialogueRNNPass, self._attention_pool))
        for name, module in self._modules:
            for cls, count in kinds:
                if isinstance(module, cls):
                    label = f"{name}.attention_pool" if cls is _DialogueRNNPass else name
                    self._handles.append(module.register_forward_hook(self._hook(label, count)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _on_model(self, module, args) -> None:
        mask = args[0].mask
        if not bool(mask.all()):
            raise ValueError("host MACs are counted from shapes: pass unpadded batches (batch size 1)")
        self.counts.utterances += int(mask.sum())

    def _hook(self, name: str, count):
        def hook(module, args, out) -> None:
            macs, outputs = count(module, args, out)
            c = self.counts.layer(name, "host")
            c.macs += macs
            c.ann_macs += macs  # the ANN twin has the same host
            c.ann_outputs += outputs

        return hook

    @staticmethod
    def _linear(module: nn.Linear, args, out) -> tuple[float, float]:
        rows = args[0].numel() // module.in_features
        return float(rows * module.in_features * module.out_features), float(out.numel())

    @staticmethod
    def _gru(module: nn.GRU, args, out) -> tuple[float, float]:
        x = args[0]
        steps = x.data.shape[0] if isinstance(x, PackedSequence) else x.shape[0] * (x.shape[1] if x.dim() == 3 else 1)
        dirs, H = 2 if module.bidirectional else 1, module.hidden_size
        macs = 0.0
        for layer in range(module.num_layers):
            d_in = module.input_size if layer == 0 else dirs * H
            macs += dirs * steps * 3 * H * (d_in + H)
        return macs, float(module.num_layers * dirs * steps * H)

    @staticmethod
    def _gru_cell(module: nn.GRUCell, args, out) -> tuple[float, float]:
        rows, H = args[0].numel() // module.input_size, module.hidden_size
        return float(rows * 3 * H * (module.input_size + H)), float(out.numel())

    @staticmethod
    def _attention(module: nn.MultiheadAttention, args, out) -> tuple[float, float]:
        query, key = args[0], args[1]  # [Lq, B, E], [Lk, B, E] (the fusion's layout)
        Lq, Lk, B, E = query.shape[0], key.shape[0], query.shape[1], module.embed_dim
        projections = (2 * Lq + 2 * Lk) * B * E * E  # q and output; k and v
        return float(projections + 2 * Lq * Lk * B * E), float(out[0].numel())  # + scores and weighted sum

    @staticmethod
    def _layernorm(module: nn.LayerNorm, args, out) -> tuple[float, float]:
        return 3.0 * args[0].numel(), float(out.numel())

    @staticmethod
    def _attention_pool(module: _DialogueRNNPass, args, out) -> tuple[float, float]:
        """DialogueRNN's α-pool at utterance t: t scores and a t-term weighted sum of D-vectors."""
        L, B, D = args[0].shape
        return float(B * D * L * (L - 1)), float(L * B * D)  # Σ_t 2·t·D


# ---- the stream model's populations ---------------------------------------------------------------


class StreamCounter:
    """Context manager: exact counts of every population and synapse of a
    :class:`~neuro_erc.model.stream.StreamModel` per forward; ``counts``: modality → CoreCounts,
    plus ``"readout"`` for the shared LI integrators."""

    def __init__(self, model: nn.Module):
        self.model, self.T = model, model.cfg.core.T
        self.counts: dict[str, CoreCounts] = {m: CoreCounts() for m in model.streams}
        self.counts["readout"] = CoreCounts()
        self._handles: list = []
        self._pending: dict[int, torch.Tensor] = {}  # id(AND operand population) -> its spikes in this call
        self._operands: set[int] = set()

    def __enter__(self) -> "StreamCounter":
        from ..model.stream import CausalAttention, Synapse  # the model imports energy nowhere; no cycle

        def on(module, hook):
            self._handles.append(module.register_forward_hook(hook))

        for m, core in self.model.streams.items():
            self._handles.append(core.register_forward_pre_hook(self._on_core(m)))
            for name, module in core.named_modules():
                if isinstance(module, Synapse):
                    on(module, self._synapse(m, name, analog=module is core.encoder.synapse))
                elif isinstance(module, (BoxLIF, CubaLIF)):
                    on(module, self._population(m, name, "lif" if isinstance(module, BoxLIF) else "cubalif"))
                elif isinstance(module, CausalAttention):
                    on(module, self._ands(m, name))
                    self._operands |= {id(module.q.lif), id(module.k.lif), id(module.v.lif), id(module.context)}
            on(self.model.readout[m], self._synapse(m, "readout", analog=False))
        on(self.model.integrator, self._population("readout", "integrator", "li"))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._pending.clear()

    def _on_core(self, m: str):
        def hook(module, args) -> None:
            windows = int(args[1].sum())
            self.counts[m].utterances += windows
            if m == next(iter(self.model.streams)):  # the integrators run once per window, for every modality
                self.counts["readout"].utterances += windows

        return hook

    def _synapse(self, m: str, name: str, analog: bool):
        def hook(module, args, out) -> None:
            x, real = args[0].detach(), args[1].detach().bool()
            d_in, d_out = module.linear.in_features, module.linear.out_features
            c = self.counts[m].layer(name, "linear")
            rows = float(real.sum())
            if analog:  # one row per window, its current held over the T steps
                c.macs += rows * d_in * d_out
                c.held_macs += rows * d_in * d_out
                c.ann_macs += rows * d_in * d_out
                return
            if not _is_events(x):
                raise ValueError(f"{m}.{name}: a synapse fed by the stream got non-spike input")
            units = float((x * real[..., None]).sum())
            c.sops += units * d_out
            c.sops_convention += units * d_out  # fr·T·FLOPs equals the exact count for a Linear
            c.ann_macs += rows / self.T * d_in * d_out

        return hook

    def _population(self, m: str, name: str, kind: str):
        def hook(module, args, out) -> None:
            current, real = args[0].detach(), args[1].detach().bool()
            c = self.counts[m].layer(name, kind)
            rows = float(real.sum())
            c.neuron_steps += rows * module.size
            c.active_neuron_steps += float(((current != 0) & real[..., None]).sum())
            c.ann_outputs += rows / self.T * module.size
            if kind != "li":
                c.spikes += float(out.detach().sum())
            if id(module) in self._operands:
                self._pending[id(module)] = out.detach()

        return hook

    def _ands(self, m: str, name: str):
        """q ∧ C and k ∧ v of one attention call: one accumulate per coincidence (as SpikEmo's SDSA)."""
        flops = PRODUCT_KINDS["and"].flops

        def hook(module, args, out) -> None:
            spikes = {p: self._pending.pop(id(getattr(module, p) if p == "context" else getattr(module, p).lif))
                      for p in ("q", "k", "v", "context")}
            real = args[1].bool()
            windows = real.sum(0) / self.T  # per dialogue
            for label, (a, b) in {"kv_and": ("k", "v"), "qc_and": ("q", "context")}.items():
                c = self.counts[m].layer(f"{name}.{label}", "and")
                c.sops += float((spikes[a] * spikes[b]).sum())
                c.sops_convention += float(spikes[a].sum())  # fr(a)·T·FLOPs, FLOPs = D per window
                c.ann_macs += flops(windows, spikes[a].shape[-1])

        return hook


# ---- counting a whole model -------------------------------------------------------------------


@torch.no_grad()
def count_whole(model: nn.Module, batches: Iterable,
                after_batch: Callable[[nn.Module], None] | None = None) -> tuple[dict[str, CoreCounts], CoreCounts | None]:
    """(spiking counts: modality → CoreCounts, host counts or None) over eval-mode passes of
    ``batches``; ``after_batch(model)`` after each (e.g. a split meter, as in ``predict``).
    SpikEmo needs unpadded batches (batch size 1) for its host; the stream model none."""
    model.eval()
    if hasattr(model, "streams"):
        with StreamCounter(model) as counter:
            for batch in batches:
                model(batch)
                if after_batch:
                    after_batch(model)
        return counter.counts, None
    if not len(model.cores):
        raise ValueError("the model has no spiking cores (built with dswa=False): nothing to count")
    cores = {m: CoreCounter(dswa.core, products_of(dswa.core)) for m, dswa in model.cores.items()}
    host = HostCounter(model, exclude=[dswa.core for dswa in model.cores.values()])
    with ExitStack() as stack:
        for counter in (*cores.values(), host):
            stack.enter_context(counter)
        for batch in batches:
            model(batch)
            if after_batch:
                after_batch(model)
    return {m: c.counts for m, c in cores.items()}, host.counts


def whole_per_utterance(cores: Mapping[str, CoreCounts], host: CoreCounts | None) -> dict[str, float]:
    """Totals per real utterance over every part (the quantities of the module docstring)."""
    out = dict.fromkeys(("host_macs", "host_outputs", "sops", "weight_sops", "macs", "held_macs", "ann_macs", "ann_outputs",
                         "neuron_updates", "spikes", "spiking_neuron_steps"), 0.0)
    if host is not None and host.utterances:
        total = host.total()
        out["host_macs"] = total.macs / host.utterances
        out["host_outputs"] = total.ann_outputs / host.utterances
    for counts in cores.values():
        if not counts.utterances:
            continue
        u = counts.utterances
        for layer in counts.layers.values():
            out["sops"] += layer.sops / u
            out["weight_sops"] += layer.sops / u if layer.kind in WEIGHTED_KINDS else 0.0
            out["macs"] += layer.macs / u
            out["held_macs"] += layer.held_macs / u
            out["ann_macs"] += layer.ann_macs / u
            out["ann_outputs"] += layer.ann_outputs / u
            out["neuron_updates"] += STATE_VARIABLES.get(layer.kind, 0) * layer.neuron_steps / u
            if layer.kind in SPIKING_KINDS:
                out["spikes"] += layer.spikes / u
                out["spiking_neuron_steps"] += layer.neuron_steps / u
    return out


def spiking_rate(cores: Mapping[str, CoreCounts]) -> float:
    """Spikes over neuron-steps of every spiking population (integrators excluded), real utterances."""
    layers = [layer for counts in cores.values() for layer in counts.layers.values() if layer.kind in SPIKING_KINDS]
    steps = sum(layer.neuron_steps for layer in layers)
    return sum(layer.spikes for layer in layers) / steps if steps else 0.0


def whole_energy(w: Mapping[str, float], T: int, precision: str = "fp32", memory: MemoryEnergy = MEMORY) -> dict[str, float]:
    """Whole-model energies (µJ per utterance) of the SNN, its ANN twin and the ⌈log₂(T+1)⌉-bit
    quantised ANN, from :func:`whole_per_utterance` totals (module docstring)."""
    e, word = cmos(precision), memory.access_pj()
    bits = quantised_bits(T)
    host = e.mac_pj * w["host_macs"]
    host_memory = word * w["host_macs"] + 2 * word * w["host_outputs"]
    snn = host + e.mac_pj * w["macs"] + e.ac_pj * w["sops"] + (e.mac_pj + e.ac_pj) * w["neuron_updates"]
    snn_memory = word * (w["macs"] + w["weight_sops"]) + 2 * word * w["neuron_updates"]
    ann = host + e.mac_pj * w["ann_macs"]
    ann_memory = word * w["ann_macs"] + 2 * word * w["ann_outputs"]
    analog = w["held_macs"]  # the input layer's MACs: its input is the host's, not quantised
    qann = host + e.mac_pj * analog + qmac_pj(bits, precision) * (w["ann_macs"] - analog)
    qann_memory = word * w["ann_macs"] + 2 * memory.access_pj(bits) * w["ann_outputs"]
    pj = {
        "energy_uj_whole": snn,
        "energy_uj_whole_memory": snn + host_memory + snn_memory,
        "ann_energy_uj_whole": ann,
        "ann_energy_uj_whole_memory": ann + host_memory + ann_memory,
        "qann_energy_uj_whole": qann,
        "qann_energy_uj_whole_memory": qann + host_memory + qann_memory,
        "host_energy_uj_memory": host + host_memory,
    }
    return {k: v / PJ_PER_UJ for k, v in pj.items()}
