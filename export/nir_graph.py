r"""A trained ``SpikingCore`` → one NIR graph per dialogue length L, in the (channels, utterances) layout.

The graph is read off the core's own dataflow listing (``SpikingCore.describe()``), one
mapping per kind of step, so a new block exports as soon as it describes itself:

=======================  =====================================================================
``linear``               ``Conv1d`` kernel 1 with the eval-mode (batch-norm-folded) W, b
``lif``                  ``LIF`` with the layer's ``NeuronParams`` (:func:`~.nir_nodes.lif_node`)
``and``                  ``Threshold`` 1.5 on the sum of the two spike inputs; an operand with one
                         "utterance" (the SDSA context) first goes through a broadcast ``Conv1d``
``sum-over-utterances``  ``Conv1d`` kernel L, channel-diagonal (D, L) → (D, 1)
``residual``             no node: the sum is a list of terms, and every reader gets an edge
                         from each term (edges into a NIR node sum)
``ssa-matmul``           refused: Q·Kᵀ·V needs O(L²·D²/H) AND units (see ``size_model``)
=======================  =====================================================================

Node names are the core's layer names (``blocks.0.attn.q.lif``), so spikes can be compared
layer by layer. A graph is built for the dialogue's real length: no padding, so no mask.
The analog input x [D_in, L] is the Input node, held constant over the T steps, exactly
as the core drives its encoder. Metadata carries ``dt``, ``T`` and the layout. Graphs are
un-batched (``nir.read``'s type inference fails on batched shapes).
"""
from __future__ import annotations

from pathlib import Path

import nir
import numpy as np

from neuro_erc.snn.core import SpikingCore

from .nir_nodes import and_node, lif_node, pointwise_conv, utterance_broadcast, utterance_sum
from .size_model import DEFAULT_BUDGET_BYTES, CoreShape, check_fits

INPUT, OUTPUT = "input", "output"
SPIKING_TYPES = (nir.LIF, nir.Threshold)


def core_shape(core: SpikingCore) -> CoreShape:
    """The size-model description of ``core``."""
    c = core.cfg
    return CoreShape(dim=c.dim, depth=c.depth, heads=c.heads, mlp_ratio=c.mlp_ratio, attention=c.attention,
                     T=c.T, in_dim=core.in_dim)


class _Builder:
    def __init__(self, core: SpikingCore, length: int):
        self.core, self.L = core, length
        self.affines = core.folded_affines()
        self.nodes: dict[str, nir.NIRNode] = {}
        self.edges: list[tuple[str, str]] = []
        self.terms: dict[str, list[str]] = {INPUT: [INPUT]}  # layer -> NIR nodes whose sum it is
        self.shapes: dict[str, tuple[int, int]] = {INPUT: (core.in_dim, length)}

    def add(self, name: str, node: nir.NIRNode, inputs: list[str], shape: tuple[int, int]) -> None:
        self.nodes[name] = node
        self.edges += [(src, name) for layer in inputs for src in self.terms[layer]]
        self.terms[name], self.shapes[name] = [name], shape

    def spikes(self, layer: str) -> str:
        (node,) = self.terms[layer]  # an AND operand must be one binary spike train
        return node

    def step(self, info) -> None:
        source = info.inputs[0]
        channels, length = self.shapes[source]
        if info.kind == "linear":
            weight, bias = (t.detach().cpu().numpy() for t in self.affines[info.name])
            self.add(info.name, pointwise_conv(weight, bias, length), [source], (weight.shape[0], length))
        elif info.kind == "lif":
            self.add(info.name, lif_node(info.neuron, (channels, length)), [source], (channels, length))
        elif info.kind == "sum-over-utterances":
            self.add(info.name, utterance_sum(channels, length), [source], (channels, 1))
        elif info.kind == "residual":
            self.terms[info.name] = [t for layer in info.inputs for t in self.terms[layer]]
            self.shapes[info.name] = self.shapes[source]
        elif info.kind == "and":
            operands = []
            for layer in info.inputs:
                c, n = self.shapes[layer]
                if n == 1 and self.L > 1:  # broadcast the (D, 1) operand over the utterances
                    self.add(f"{info.name}.broadcast", utterance_broadcast(c, self.L), [layer], (c, self.L))
                    layer = f"{info.name}.broadcast"
                operands.append(self.spikes(layer))
            shape = (channels, self.L)
            self.nodes[info.name] = and_node(shape)
            self.edges += [(op, info.name) for op in operands]
            self.terms[info.name], self.shapes[info.name] = [info.name], shape
        else:
            raise NotImplementedError(
                f"{info.name}: no NIR mapping for a {info.kind!r} step"
                + (" (SSA's Q·Kᵀ·V needs O(L²·D²/H) AND units; train with attention='sdsa' to export)"
                   if info.kind == "ssa-matmul" else ""))

    def graph(self) -> nir.NIRGraph:
        core = self.core
        self.nodes[INPUT] = nir.Input(input_type=np.array(self.shapes[INPUT]))
        layers = core.describe()
        for info in layers:
            self.step(info)
        last = layers[-1].name
        self.nodes[OUTPUT] = nir.Output(output_type=np.array(self.shapes[last]))
        self.edges += [(t, OUTPUT) for t in self.terms[last]]
        dts = {info.neuron.dt for info in layers if info.kind == "lif"}
        if len(dts) != 1:
            raise ValueError(f"all LIF layers must share one dt to export; found {sorted(dts)}")
        metadata = {"dt": float(dts.pop()), "T": int(core.cfg.T), "dialogue_length": int(self.L),
                    "layout": "(channels, utterances)", "attention": core.cfg.attention, "source": "neuro-erc"}
        return nir.NIRGraph(nodes=self.nodes, edges=self.edges, metadata=metadata)


def core_to_nir(core: SpikingCore, length: int, budget_bytes: int = DEFAULT_BUDGET_BYTES) -> nir.NIRGraph:
    """The NIR graph of ``core`` (eval mode, batch norm folded) for a dialogue of ``length`` utterances.

    Refuses (``ExportSizeError``, naming the longest length that fits) above ``budget_bytes``.
    """
    if core.cfg.attention != "sdsa":
        raise NotImplementedError("NIR export builds SDSA cores only: SSA's Q·Kᵀ·V needs O(L²·D²/H) AND units "
                                  "(see neuro_erc.export.size_model); train with attention='sdsa' to export")
    check_fits(core_shape(core), length, budget_bytes, target="nir")
    return _Builder(core, length).graph()


def spiking_nodes(graph: nir.NIRGraph) -> list[str]:
    """Names of the LIF and Threshold nodes, in insertion order."""
    return [name for name, node in graph.nodes.items() if isinstance(node, SPIKING_TYPES)]


def save_graph(graph: nir.NIRGraph, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nir.write(path, graph)
    return path


def load_graph(path: str | Path) -> nir.NIRGraph:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no NIR file at {path}")
    return nir.read(path)
