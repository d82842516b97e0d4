r"""A trained :class:`~neuro_erc.model.stream.StreamModel` → **one** NIR graph for every dialogue length.

The graph takes one utterance per window of T steps and carries its state from window to
window: a dialogue of any length streams through it, and a new dialogue starts from rest.
Nothing in it depends on the dialogue's length (metadata ``"streaming": true``, ``T``, ``dt``).

**Layout.** One top graph; one nested graph per modality core, between ``input_<m>`` and the
readout (``nir.NIRGraph`` nests like the SpikEmo export, :mod:`.nir_graph`):

.. code-block:: text

    input_<m> ─▶ <m> (core graph) ─▶ readout_<m> (Affine) ─┐
                                                           ├─▶ readout (LI) ─▶ output
    input_<m'> ─▶ <m'> ─────────────▶ readout_<m'> ────────┘

A core graph's input is ``[features; speaker one-hot (max_speakers); same-speaker bit]``
(:func:`~neuro_erc.model.stream.speaker_code`), held constant over the window; its output the
modality's residual stream (spike counts: the sum of its terms' edges). The readout integrator
is read at the window's last step: those are the utterance's logits.

**Nodes**, one mapping per piece of the model (node names are its module names):

=========================  ===================================================================
``Synapse``                ``Affine`` with the eval-mode (W, b), batch norm folded
``BoxLIF``                 ``LIF`` (τ = 1/τ_mem⁻¹, r = 1: :func:`~.nir_nodes.lif_node`)
``a ∧ b`` (K∧V, Q∧C)       memoryless ``LIF``: τ = dt, r = 1, v_leak = v_reset = 0,
                           v_threshold = 1.5, on the sum of the two spike edges
context ``CubaLIF``        ``CubaLIF``, τ_syn per channel, w_in = 1: NIR's
                           τ_syn dI/dt = −I + w_in·x, forward Euler, *is* the model's
                           leaky average I ← I + κ(x − I), κ = dt/τ_syn
readout                    one ``Affine`` per modality into one ``LI`` (τ = readout_tau, r = 1)
residual ``s + f(s)``      no node: every reader of s gets an edge from each term
=========================  ===================================================================

Only node types other NIR consumers import (Affine, LIF, CubaLIF, LI). The exported weights
are the model's own eval ones, not flushed (:mod:`.exact_sums`): the model applies them in
float64 and rounds once, as :mod:`.nir_sim` does, so the two agree spike for spike
(``tests/test_stream_export.py``). Float64 sums of float32 weights can differ in their last
bit between summation orders; crossing a float32 rounding point needs that bit to matter,
which we have not seen happen.
"""
from __future__ import annotations

from pathlib import Path

import nir
import numpy as np
import torch

from neuro_erc.config import to_dict
from neuro_erc.errors import ExportError
from neuro_erc.io import atomic_path
from neuro_erc.model.stream import CausalAttention, Layer, StreamCore, StreamModel, Synapse, speaker_code
from neuro_erc.snn.neuron import NeuronParams

from .nir_graph import fingerprint, listed_modalities, read_format
from .nir_nodes import AND_THRESHOLD, lif_node
from .nir_sim import Stepper

FORMAT, FORMAT_VERSION = "neuro-erc.stream", 1
INPUT, OUTPUT, READOUT = "input", "output", "readout"


def model_fingerprint(model: StreamModel) -> str:
    """:func:`~.nir_graph.fingerprint` of the whole stream model (its config and weights)."""
    return fingerprint(model, {"arch": "stream", "config": to_dict(model.cfg)})


def affine(synapse: Synapse) -> nir.Affine:
    weight, bias = (t.detach().cpu().numpy().astype(np.float32) for t in synapse.effective_affine())
    return nir.Affine(weight=weight, bias=bias)


def and_lif(size: int, dt: float) -> nir.LIF:
    """``a ∧ b`` of binary spikes as a memoryless LIF: with τ = dt one Euler step sets v to the
    input (0, 1 or 2 spikes), and only 2 crosses 1.5."""
    full = lambda value: np.full((size,), float(value), dtype=np.float64)  # noqa: E731
    return nir.LIF(tau=full(dt), r=full(1.0), v_leak=full(0.0), v_threshold=full(AND_THRESHOLD), v_reset=full(0.0))


def context_node(attn: CausalAttention, neuron: NeuronParams) -> nir.CubaLIF:
    p = neuron.norse()
    size = attn.context.size
    full = lambda value: np.full((size,), float(value), dtype=np.float64)  # noqa: E731
    return nir.CubaLIF(tau_syn=attn.context.tau_syn.cpu().numpy(), tau_mem=full(1.0 / float(p.tau_mem_inv)), r=full(1.0), v_leak=full(p.v_leak),
                       v_threshold=full(p.v_th), v_reset=full(p.v_reset), w_in=full(1.0))


class _CoreBuilder:
    """The nested graph of one :class:`StreamCore`, in the model's order."""

    def __init__(self, core: StreamCore, in_dim: int):
        self.core, self.dt = core, core.encoder.lif.params.dt
        self.nodes: dict[str, nir.NIRNode] = {INPUT: nir.Input(input_type=np.array([in_dim]))}
        self.edges: list[tuple[str, str]] = []

    def add(self, name: str, node: nir.NIRNode, sources: list[str]) -> list[str]:
        self.nodes[name] = node
        self.edges += [(src, name) for src in sources]
        return [name]

    def layer(self, name: str, layer: Layer, sources: list[str]) -> list[str]:
        current = self.add(f"{name}.synapse", affine(layer.synapse), sources)
        return self.add(f"{name}.lif", lif_node(layer.lif.params, (layer.lif.size,)), current)

    def attention(self, name: str, attn: CausalAttention, s: list[str]) -> list[str]:
        q, k, v = (self.layer(f"{name}.{part}", getattr(attn, part), s) for part in ("q", "k", "v"))
        kv = self.add(f"{name}.kv", and_lif(attn.context.size, self.dt), k + v)
        current = self.add(f"{name}.context_synapse", affine(attn.context_synapse), kv)
        context = self.add(f"{name}.context", context_node(attn, attn.context.params), current)
        qc = self.add(f"{name}.qc", and_lif(attn.context.size, self.dt), q + context)
        return self.layer(f"{name}.proj", attn.proj, qc)

    def graph(self) -> nir.NIRGraph:
        s = self.layer("encoder", self.core.encoder, [INPUT])
        for i, block in enumerate(self.core.blocks):
            a = self.attention(f"blocks.{i}.attn", block.attn, s)
            s = s + a
            mlp = self.layer(f"blocks.{i}.fc1", block.fc1, s if block.mlp_reads_stream else a)
            s = s + self.layer(f"blocks.{i}.fc2", block.fc2, mlp)
        self.nodes[OUTPUT] = nir.Output(output_type=np.array([self.core.encoder.lif.size]))
        self.edges += [(term, OUTPUT) for term in s]
        return nir.NIRGraph(nodes=self.nodes, edges=self.edges)


def stream_to_nir(model: StreamModel) -> nir.NIRGraph:
    """The streaming NIR graph of ``model`` (eval weights), for dialogues of any length."""
    cfg, dt = model.cfg, model.cfg.core.neuron.dt
    nodes: dict[str, nir.NIRNode] = {}
    edges: list[tuple[str, str]] = []
    for m, core in model.streams.items():
        in_dim = cfg.input_dims[m] + model.slots + 1
        nodes.update({f"input_{m}": nir.Input(input_type=np.array([in_dim])), m: _CoreBuilder(core, in_dim).graph(),
                      f"{READOUT}_{m}": affine(model.readout[m])})
        edges += [(f"input_{m}", m), (m, f"{READOUT}_{m}"), (f"{READOUT}_{m}", READOUT)]
    full = lambda value: np.full((cfg.n_classes,), float(value), dtype=np.float64)  # noqa: E731
    nodes[READOUT] = nir.LI(tau=full(model.readout_tau), r=full(1.0), v_leak=full(0.0))
    nodes[OUTPUT] = nir.Output(output_type=np.array([cfg.n_classes]))
    edges.append((READOUT, OUTPUT))
    metadata = {
        "format": FORMAT, "format_version": FORMAT_VERSION, "source": "neuro-erc", "streaming": True,
        "T": int(cfg.core.T), "dt": float(dt), "modalities": list(cfg.modalities), "max_speakers": int(model.slots),
        "n_classes": int(cfg.n_classes), "readout_step": int(cfg.core.T) - 1,
        "input_layout": "[features; speaker one-hot (max_speakers); same speaker as previous (1)], held over the window",
        "fingerprint": model_fingerprint(model),
    }
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def save_stream_graph(graph: nir.NIRGraph, path: str | Path) -> Path:
    """Write ``graph`` (from :func:`stream_to_nir`) to ``path``, replaced atomically."""
    with atomic_path(path) as tmp:
        nir.write(tmp, graph)
    return Path(path)


def load_stream_graph(path: str | Path) -> nir.NIRGraph:
    """The graph :func:`save_stream_graph` wrote, checked; anything else is an ``ExportError``."""
    path = Path(path)
    expected = f"expected a streaming NIR graph (format {FORMAT!r}) as `neuro-erc export nir` writes for a stream model"
    graph = read_format(path, FORMAT, FORMAT_VERSION, expected)
    for m in listed_modalities(graph.metadata):
        if not isinstance(graph.nodes.get(m), nir.NIRGraph) or f"input_{m}" not in graph.nodes:
            raise ExportError(f"{path}: modality {m!r} is listed but has no core graph and input: the file is damaged")
    if not isinstance(graph.nodes.get(READOUT), nir.LI):
        raise ExportError(f"{path}: no LI readout node {READOUT!r}: the file is damaged")
    return graph


class StreamGraphRunner:
    """A streaming graph run by the numpy simulator (:class:`~.nir_sim.Stepper`), utterance after utterance.

    :meth:`utterance` advances the graph by one window and returns the logits (the readout at
    the window's last step) and every spiking node's spikes ``[T, N]``; :meth:`reset` starts a
    new dialogue.
    """

    def __init__(self, graph: nir.NIRGraph):
        self.stepper = Stepper(graph)
        meta = graph.metadata
        self.T, self.slots = int(meta["T"]), int(meta["max_speakers"])
        self.modalities = listed_modalities(meta)
        self.spiking = [n for n, node in self.stepper.graph.nodes.items() if isinstance(node, (nir.LIF, nir.CubaLIF))]

    def reset(self) -> None:
        self.stepper.reset()

    @staticmethod
    def code(speaker: int, same: bool, slots: int) -> np.ndarray:
        """The speaker code the host appends to each modality's features (:func:`speaker_code`)."""
        return speaker_code(torch.tensor(speaker), torch.tensor(same), slots).numpy()

    def utterance(self, features: dict[str, np.ndarray], speaker: int, same: bool) -> tuple[np.ndarray, dict]:
        """One window: ``features`` (modality → vector), the speaker's index in order of first turn
        and whether the previous utterance was theirs → (logits [C], node → spikes [T, N])."""
        code = self.code(speaker, same, self.slots)
        inputs = {f"input_{m}": np.concatenate([np.asarray(features[m], dtype=np.float32), code]) for m in self.modalities}
        spikes = {n: [] for n in self.spiking}
        for _ in range(self.T):
            out = self.stepper.step(inputs)
            for n in self.spiking:
                spikes[n].append(out[n])
        return out[OUTPUT], {n: np.stack(z) for n, z in spikes.items()}
