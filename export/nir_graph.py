r"""A trained ``SpikingCore`` → one NIR graph per dialogue length L, in the (channels, utterances) layout.

The graph is read off the core's own typed dataflow listing (``SpikingCore.describe()``,
:mod:`neuro_erc.snn.layers`), one mapping per kind of step (``_Builder.MAPPINGS``), so a new
block exports as soon as it describes itself with kinds that have a mapping:

=======================  =====================================================================
``layers.Linear``        ``Conv1d`` kernel 1 with the exported W, b (:func:`exported_affines`)
``layers.LIF``           ``LIF`` with the layer's ``NeuronParams`` (:func:`~.nir_nodes.lif_node`)
``layers.And``           ``Threshold`` 1.5 on the sum of the two spike inputs; an operand with one
                         "utterance" (the SDSA context) first goes through a broadcast ``Conv1d``
``layers.UtteranceSum``  ``Conv1d`` kernel L, channel-diagonal (D, L) → (D, 1)
``layers.Residual``      no node: the sum is a list of terms, and every reader gets an edge
                         from each term (edges into a NIR node sum)
``layers.SSAMatmul``     refused: Q·Kᵀ·V needs O(L²·D²/H) AND units (see ``size_model``)
=======================  =====================================================================

The exported weights are the eval-mode ones with batch norm folded in, and, in the layers fed
by spikes, the few entries flushed to 0 whose last bit lies below the float64 resolution of
their neuron's sum (:mod:`.exact_sums`: what makes every backend's synaptic sum exact).

Node names are the core's layer names (``blocks.0.attn.q.lif``), so spikes can be compared
layer by layer. A graph is built for the dialogue's real length: no padding, so no mask.
The analog input x [D_in, L] is the Input node, held constant over the T steps, exactly
as the core drives its encoder. Metadata carries ``dt``, ``T``, the layout and the core's
:func:`core_fingerprint`. Graphs are un-batched (``nir.read``'s type inference fails on batched
shapes).

**The file** (:func:`save_graph` / :func:`load_graph`, what ``neuro-erc export nir`` writes) is
one NIR graph holding one nested graph per modality core, keyed by modality, each between an
``input_<m>`` and an ``output_<m>`` node (NIR's own convention for a graph's inputs and outputs;
``nir.NIRGraph`` adds them itself when they are missing). A single core gets the same layout,
so readers handle one shape. The top graph's metadata says what the file is and what it pairs
with: ``format``, ``format_version``, ``modalities`` (in the model's order), ``T``, ``dt``,
``dialogue_length`` and ``fingerprints`` (modality → :func:`core_fingerprint`).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path

import nir
import numpy as np

from neuro_erc.config import to_dict
from neuro_erc.errors import ExportError
from neuro_erc.io import atomic_path
from neuro_erc.snn import layers
from neuro_erc.snn.core import SpikingCore

from .exact_sums import flush_subresolution
from .nir_nodes import and_node, lif_node, pointwise_conv, utterance_broadcast, utterance_sum
from .nir_sim import single_input
from .size_model import DEFAULT_BUDGET_BYTES, CoreShape, check_fits

INPUT, OUTPUT = "input", "output"
SPIKING_TYPES = (nir.LIF, nir.Threshold)
FORMAT, FORMAT_VERSION = "neuro-erc.cores", 1
SHARED_METADATA = ("T", "dt", "dialogue_length")  # the same in every core graph of a file


def fingerprint(module, description: dict) -> str:
    """sha256 of what decides a module's spikes: ``description`` (its config, as JSON) and every
    state-dict tensor (name, dtype, shape, bytes) in sorted key order. An exported artefact
    records it, so a later run can check the artefact came from the checkpoint it is paired with."""
    digest = hashlib.sha256(json.dumps(description, sort_keys=True).encode())
    for name, tensor in sorted(module.state_dict().items()):
        array = tensor.detach().cpu().contiguous().numpy()
        digest.update(f"{name}:{array.dtype}:{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def core_fingerprint(core: SpikingCore) -> str:
    """:func:`fingerprint` of a core (its input width and config)."""
    return fingerprint(core, {"in_dim": core.in_dim, "config": to_dict(core.cfg)})


def core_shape(core: SpikingCore) -> CoreShape:
    """The size-model description of ``core``."""
    c = core.cfg
    return CoreShape(dim=c.dim, depth=c.depth, heads=c.heads, mlp_ratio=c.mlp_ratio, attention=c.attention,
                     T=c.T, in_dim=core.in_dim)


def spike_trains_summed(core: SpikingCore) -> dict[str, int]:
    """Layer → how many binary spike trains its output sums (the largest value it takes,
    :meth:`~neuro_erc.snn.layers.LayerInfo.spike_trains`): 1 for a spiking layer, the number of
    terms for a residual stream, 0 for the analog input. (An ``UtteranceSum`` counts up to L,
    but only a LIF reads it, through weights 1.)"""
    trains = {INPUT: 0}
    for info in core.describe():
        trains[info.name] = info.spike_trains(trains)
    return trains


def exported_affines(core: SpikingCore) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], int]:
    """(Linear name → the float32 (W, b) the export runs, the number of entries flushed).

    W, b are the eval-mode ones with batch norm folded in (``SpikingCore.folded_affines``); in a
    layer fed by spikes or spike counts, :func:`~.exact_sums.flush_subresolution` sets to 0 the
    entries that would make a float64 sum of its row inexact. The analog encoder is kept as is
    (its current is computed once, on the host). The NIR graph and the Norse reference
    (:func:`~.norse_ref.exported_core`) both take their weights from here.
    """
    trains, folded = spike_trains_summed(core), core.folded_affines()
    affines, flushed = {}, 0
    for info in core.layers():
        if not isinstance(info, layers.Linear):
            continue
        weight, bias = (t.detach().cpu().numpy().astype(np.float32) for t in folded[info.name])
        if info.input_type.events:
            weight, bias, n = flush_subresolution(weight, bias, trains[info.inputs[0]])
            flushed += n
        affines[info.name] = (weight, bias)
    return affines, flushed


class _Builder:
    def __init__(self, core: SpikingCore, length: int):
        self.core, self.L = core, length
        self.affines, self.flushed = exported_affines(core)
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

    def step(self, info: layers.LayerInfo) -> None:
        mapping = self.MAPPINGS.get(type(info))
        if mapping is None:
            raise ExportError(f"{info.name}: no NIR mapping for a {info.kind!r} step")
        mapping(self, info)

    def _source(self, info: layers.LayerInfo) -> tuple[str, int, int]:
        source = info.inputs[0]
        return (source, *self.shapes[source])

    def _linear(self, info: layers.Linear) -> None:
        source, _, length = self._source(info)
        weight, bias = self.affines[info.name]
        self.add(info.name, pointwise_conv(weight, bias, length), [source], (weight.shape[0], length))

    def _lif(self, info: layers.LIF) -> None:
        source, channels, length = self._source(info)
        self.add(info.name, lif_node(info.neuron, (channels, length)), [source], (channels, length))

    def _utterance_sum(self, info: layers.UtteranceSum) -> None:
        source, channels, length = self._source(info)
        self.add(info.name, utterance_sum(channels, length), [source], (channels, 1))

    def _residual(self, info: layers.Residual) -> None:
        self.terms[info.name] = [t for layer in info.inputs for t in self.terms[layer]]
        self.shapes[info.name] = self.shapes[info.inputs[0]]

    def _and(self, info: layers.And) -> None:
        _, channels, _ = self._source(info)
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

    def _refuse_ssa(self, info: layers.SSAMatmul) -> None:
        raise ExportError(f"{info.name}: no NIR mapping for a {info.kind!r} step "
                          "(SSA's Q·Kᵀ·V needs O(L²·D²/H) AND units; train with attention='sdsa' to export)")

    MAPPINGS = {layers.Linear: _linear, layers.LIF: _lif, layers.UtteranceSum: _utterance_sum,
                layers.Residual: _residual, layers.And: _and, layers.SSAMatmul: _refuse_ssa}
    """Step kind → how it becomes NIR nodes and edges (the table of the module docstring)."""

    def graph(self) -> nir.NIRGraph:
        core = self.core
        self.nodes[INPUT] = nir.Input(input_type=np.array(self.shapes[INPUT]))
        steps = core.describe()
        for info in steps:
            self.step(info)
        last = steps[-1].name
        self.nodes[OUTPUT] = nir.Output(output_type=np.array(self.shapes[last]))
        self.edges += [(t, OUTPUT) for t in self.terms[last]]
        dts = {info.neuron.dt for info in steps if isinstance(info, layers.LIF)}
        if len(dts) != 1:
            raise ExportError(f"all LIF layers must share one dt to export; found {sorted(dts)}")
        metadata = {"dt": float(dts.pop()), "T": int(core.cfg.T), "dialogue_length": int(self.L),
                    "layout": "(channels, utterances)", "attention": core.cfg.attention, "source": "neuro-erc",
                    "fingerprint": core_fingerprint(core), "flushed_weights": int(self.flushed)}
        return nir.NIRGraph(nodes=self.nodes, edges=self.edges, metadata=metadata)


def core_to_nir(core: SpikingCore, length: int, budget_bytes: int = DEFAULT_BUDGET_BYTES) -> nir.NIRGraph:
    """The NIR graph of ``core`` (eval mode, batch norm folded) for a dialogue of ``length`` utterances.

    Refuses (``ExportError``) SSA attention and LayerNorm, and (``ExportSizeError``, naming the
    longest length that fits) graphs above ``budget_bytes``.
    """
    if core.cfg.attention != "sdsa":
        raise ExportError("NIR export builds SDSA cores only: SSA's Q·Kᵀ·V needs O(L²·D²/H) AND units "
                          "(see neuro_erc.export.size_model); train with attention='sdsa' to export")
    if core.cfg.norm == "layer":
        raise ExportError("LayerNorm normalises each position by its own statistics: it does not fold into a Linear; "
                          "train with norm='batch' or 'none' to export")
    check_fits(core_shape(core), length, budget_bytes, target="nir")
    return _Builder(core, length).graph()


def spiking_nodes(graph: nir.NIRGraph) -> list[str]:
    """Names of the LIF and Threshold nodes, in insertion order."""
    return [name for name, node in graph.nodes.items() if isinstance(node, SPIKING_TYPES)]


def save_graph(graphs: Mapping[str, nir.NIRGraph], path: str | Path) -> Path:
    """Write the core graphs ``{modality: graph}`` (from :func:`core_to_nir`, one length) as one NIR file.

    The file replaces ``path`` atomically: nothing else is written beside it.
    """
    if not graphs:
        raise ExportError("no core graphs to write")
    first = next(iter(graphs.values())).metadata
    for m, graph in graphs.items():
        missing = [key for key in (*SHARED_METADATA, "fingerprint") if key not in graph.metadata]
        unlike = [key for key in SHARED_METADATA if graph.metadata.get(key) != first.get(key)]
        if missing or unlike:
            raise ExportError(f"core graph {m!r}: metadata {missing + unlike} missing or unlike the other cores' "
                              "(one file holds graphs of one T, dt and dialogue length, from core_to_nir)")
    nodes, edges = {}, []
    for m, graph in graphs.items():
        single_input(graph)
        (in_type,), (out_type,) = graph.input_type.values(), graph.output_type.values()
        nodes.update({f"input_{m}": nir.Input(input_type=np.asarray(in_type)), m: graph,
                      f"output_{m}": nir.Output(output_type=np.asarray(out_type))})
        edges += [(f"input_{m}", m), (m, f"output_{m}")]
    metadata = {"format": FORMAT, "format_version": FORMAT_VERSION, "modalities": list(graphs),
                **{key: first[key] for key in SHARED_METADATA},
                "fingerprints": {m: graph.metadata["fingerprint"] for m, graph in graphs.items()}}
    with atomic_path(path) as tmp:
        nir.write(tmp, nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata))
    return Path(path)


def read_format(path: Path, fmt: str, version: int, expected: str) -> nir.NIRGraph:
    """The NIR graph in ``path`` if its metadata says ``format`` ``fmt``, version 1 … ``version``;
    else an ``ExportError`` naming the file and ``expected``."""
    if not path.is_file():
        raise ExportError(f"{path}: no such NIR file; {expected}")
    try:
        top = nir.read(path)
    except MemoryError:
        raise
    except Exception as err:  # h5py and nir raise OSError, KeyError, ValueError, ... on what is not a NIR file
        raise ExportError(f"{path}: not a readable NIR file ({type(err).__name__}: {err}); {expected}") from err
    meta = getattr(top, "metadata", None) or {}
    if not isinstance(top, nir.NIRGraph) or meta.get("format") != fmt:
        raise ExportError(f"{path}: a NIR graph, but not one of format {fmt!r}; {expected}")
    found = meta.get("format_version")
    if not isinstance(found, (int, np.integer)) or not 1 <= found <= version:
        raise ExportError(f"{path}: format version {found!r}; this neuro-erc reads versions 1 to {version}")
    return top


def listed_modalities(metadata: Mapping) -> list[str]:
    """The ``modalities`` metadata entry as strings (HDF5 gives back bytes)."""
    return [m.decode() if isinstance(m, bytes) else str(m) for m in np.atleast_1d(metadata.get("modalities", []))]


def load_graph(path: str | Path) -> dict[str, nir.NIRGraph]:
    """The core graphs ``{modality: graph}`` of a file :func:`save_graph` wrote, checked for that layout.

    Anything else — a missing, empty, truncated or foreign file — is an ``ExportError`` naming
    the file and what was expected.
    """
    path = Path(path)
    expected = f"expected a NIR file of per-modality core graphs (format {FORMAT!r}) as `neuro-erc export nir` writes"
    top = read_format(path, FORMAT, FORMAT_VERSION, expected)
    meta = top.metadata
    modalities = listed_modalities(meta)
    if not modalities:
        raise ExportError(f"{path}: lists no modality cores; {expected}")
    graphs = {m: top.nodes.get(m) for m in modalities}
    fingerprints = meta.get("fingerprints") or {}
    for m, graph in graphs.items():
        if not isinstance(graph, nir.NIRGraph):
            raise ExportError(f"{path}: modality {m!r} is listed but has no core graph; {expected}")
        differs = [key for key in SHARED_METADATA if graph.metadata.get(key) != meta.get(key)]
        if graph.metadata.get("fingerprint") != fingerprints.get(m):
            differs.append("fingerprint")
        if differs:
            raise ExportError(f"{path}: core graph {m!r} disagrees with the file's metadata on {differs}: the file is damaged")
    return graphs
