r"""The streaming NIR graph (:mod:`.stream_graph`) as **one** compiled Lava network, fed utterance after utterance.

**One network for the whole graph**, every modality's core and the readout in it, not one per
modality: the modalities meet in the LI readout, and the float32 step of an LI on the summed
current is not the sum of per-modality LI steps, so separate networks would need the readout
on the host and would lose its float32 exactness. Here the readout runs in Lava too; each
modality's core is compiled exactly once (inside that network), which ``graphs_compiled``
reports per modality.

**Mapping.** The graph is flattened (:func:`~.nir_sim.flatten`), the cores' Input/Output
pass-through nodes are bypassed, and the modalities' inputs become one Input (their vectors
concatenated; each encoder Affine padded with zero columns to read its own part):
:func:`single_input_graph`. :func:`~.lava_build.build_plan` then plans it as it does a SpikEmo
core — LIF and the AND units (memoryless LIF, τ = dt, on spike sums) as ``BoxLIF``, the context
CubaLIF and the readout LI as :class:`~.lava_procs.process.CubaLIF` in Norse's float32 order,
relays where paths of different hop counts meet (q and the context, the residual terms, the
modalities' streams at the readout) — and :class:`~.lava_run.LavaCore` runs it with ``carry``.

**Time.** One utterance is one period of ``T + latency`` Lava steps: a unit at hop h computes the
window's Norse steps in period steps h+1 … h+T and holds its state outside them, so state
carries from window to window as in Norse. The readout's voltage at its window's last step
is the utterance's logits, available when the period ends. A new dialogue is one
:meth:`StreamLava.reset`: every neuron process gets the step its next period starts at and
restarts from rest there (one scalar write per process; nothing recompiles, nothing else is
written).

**Host parts** (the issue asks them named): (1) each modality's input current, the encoder
Affine ``fl32(W [x; speaker code] + b)`` in float64 numpy, exactly as the reference simulator
computes it, written as the bias of the input-driven neurons once per utterance — the SpikEmo
path hands Lava the host's input current the same way; (2) building the speaker code and
reading the readout's voltage (the logits; the argmax). Every other current is a sum of spikes
through Lava's float ``Sparse`` (float64), rounded once to float32 by the neuron: the same
numbers as :class:`~.nir_sim.Stepper` whenever those float64 sums are exact (:mod:`.stream_graph`
says when they might not be).
"""
from __future__ import annotations

import time
from collections import defaultdict

import nir
import numpy as np

from neuro_erc.errors import ExportError
from neuro_erc.evaluate import classification_report

from .lava_build import LavaPlan, build_plan
from .lava_run import LavaCore, require_lava
from .nir_graph import listed_modalities
from .nir_sim import flatten
from .stream_graph import INPUT, READOUT, StreamGraphRunner
from .stream_parity import compare_streams

F32, F64 = np.float32, np.float64


def single_input_graph(graph: nir.NIRGraph) -> tuple[nir.NIRGraph, dict[str, tuple[str, np.ndarray, np.ndarray]]]:
    """``graph`` flat, with one Input ``[x_m for m in modalities]`` (see the module docstring), and
    the host's input layers: ``{input-driven neuron: (input node, W float64, b float64)}``."""
    flat = flatten(graph)
    preds, succs = defaultdict(list), defaultdict(list)
    for src, dst in flat.edges:
        preds[dst].append(src)
        succs[src].append(dst)
    through = {n for n, node in flat.nodes.items() if isinstance(node, (nir.Input, nir.Output)) and preds[n] and succs[n]}

    def origins(name: str) -> list[str]:
        return [o for p in preds[name] for o in origins(p)] if name in through else [name]

    edges = [(o, dst) for src, dst in flat.edges if dst not in through for o in origins(src)]
    inputs = [f"input_{m}" for m in listed_modalities(flat.metadata)]
    if sorted(inputs) != sorted(n for n, node in flat.nodes.items() if isinstance(node, nir.Input) and n not in through):
        raise ExportError(f"a streaming graph's inputs are {inputs}, one per listed modality; this one's differ")
    sizes = [int(flat.nodes[n].input_type["input"][0]) for n in inputs]
    offsets = dict(zip(inputs, np.cumsum([0, *sizes[:-1]]).tolist()))
    nodes = {n: node for n, node in flat.nodes.items() if n not in through and n not in inputs}
    nodes[INPUT] = nir.Input(input_type=np.array([sum(sizes)]))
    host, merged = {}, []
    for src, dst in edges:
        if src not in inputs:
            merged.append((src, dst))
            continue
        layer, readers = nodes[dst], [d for s, d in edges if s == dst]
        if not isinstance(layer, nir.Affine) or len(readers) != 1 or [s for s, d in edges if d == readers[0]] != [dst]:
            raise ExportError(f"{src} -> {dst}: an input feeds one Affine, read by one neuron node alone")
        weight = np.zeros((layer.weight.shape[0], sum(sizes)), dtype=layer.weight.dtype)
        weight[:, offsets[src]: offsets[src] + layer.weight.shape[1]] = layer.weight
        nodes[dst] = nir.Affine(weight=weight, bias=layer.bias)
        host[readers[0]] = (src, layer.weight.astype(F64), layer.bias.astype(F64))
        merged.append((INPUT, dst))
    return nir.NIRGraph(nodes=nodes, edges=merged, metadata=dict(flat.metadata), type_check=False), host


def stream_plan(graph: nir.NIRGraph) -> LavaPlan:
    """The Lava plan of a streaming graph (:func:`single_input_graph`, then :func:`~.lava_build.build_plan`)."""
    return build_plan(single_input_graph(graph)[0])


class StreamLava:
    """A streaming graph on Lava: :class:`~.stream_graph.StreamGraphRunner`'s interface (``reset``,
    ``utterance``), so :func:`~.stream_parity.graph_stream` drives either. Use as a context manager.

    ``compile_seconds`` is the first utterance's (compiling) run, ``run_seconds`` / ``runs`` the
    others': the steady per-utterance cost.
    """

    def __init__(self, graph: nir.NIRGraph):
        require_lava()
        meta = graph.metadata
        self.T, self.slots, self.modalities = int(meta["T"]), int(meta["max_speakers"]), listed_modalities(meta)
        single, self.host = single_input_graph(graph)
        self.plan = build_plan(single)
        self.lava = LavaCore(self.plan, "float", carry=True)
        self.compile_seconds, self.run_seconds, self.runs = 0.0, 0.0, 0

    @property
    def graphs_compiled(self) -> int:
        return self.lava.compiled

    def reset(self) -> None:
        self.lava.restart()

    def currents(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The host part: each input-driven node's current, fl32(W x + b) in float64 like the reference."""
        return {name: (w @ inputs[src] + b).astype(F32) for name, (src, w, b) in self.host.items()}

    def utterance(self, features: dict[str, np.ndarray], speaker: int, same: bool) -> tuple[np.ndarray, dict]:
        """One window → (logits [C], spiking node → spikes bool [T, N]); state carries to the next."""
        code = StreamGraphRunner.code(speaker, same, self.slots)
        inputs = {f"input_{m}": np.concatenate([np.asarray(features[m], dtype=F32), code]) for m in self.modalities}
        compiled, t0 = self.lava.compiled, time.perf_counter()
        out = self.lava.run(currents=self.currents(inputs))
        seconds = time.perf_counter() - t0
        if self.lava.compiled > compiled:
            self.compile_seconds += seconds
        else:
            self.run_seconds, self.runs = self.run_seconds + seconds, self.runs + 1
        return out.pop(READOUT)[-1], out

    def close(self) -> None:
        self.lava.close()

    def __enter__(self) -> "StreamLava":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def stream_lava_parity(model, graph: nir.NIRGraph, dialogues, labels, dataset_name: str, split: str,
                       progress=lambda it: it) -> dict:
    """Every dialogue through the Norse stream model and through one Lava network of ``graph``: PARITY.json.

    The keys of :func:`~.parity.hybrid_parity` (reference ``norse``, other ``lava``; spikes of every
    Norse population, per node as ``<modality>.<layer>``), plus ``graphs_compiled`` (per modality;
    1: one network served every dialogue), ``lava_ms_per_utterance`` (steady runs, the compiling
    first one apart in ``lava_compile_seconds``), ``norse_ms_per_utterance`` and
    ``max_logit_difference``. A stream model is exported unflushed, so its exported network *is*
    the trained model: the ``*_trained`` keys equal the plain ones.
    """
    model.eval()
    t0 = time.perf_counter()
    with StreamLava(graph) as lava:
        build_seconds = time.perf_counter() - t0
        seen = compare_streams(model, lava, dialogues, progress)
        compiled = lava.graphs_compiled
        lava_seconds = build_seconds + lava.compile_seconds + lava.run_seconds
        steady_ms = 1000 * lava.run_seconds / lava.runs if lava.runs else float("nan")
        compile_seconds = lava.compile_seconds
    keep = np.array(seen.gold) >= 0
    gold, pred_norse, pred_lava = (np.array(a, dtype=int)[keep] for a in (seen.gold, seen.reference, seen.other))
    tally, worst, lengths, norse_seconds = seen.tally, seen.max_logit_difference, set(seen.lengths), seen.reference_seconds
    n_utterances = sum(seen.lengths)
    report = lambda pred: classification_report(gold, pred, labels, dataset_name, split)["weighted_f1"]  # noqa: E731
    agreement = float(np.mean(pred_norse == pred_lava)) if len(gold) else float("nan")
    measures = tally.report(reference="norse", other="lava")
    return {
        "spike_agreement": measures.pop("spike_agreement"),
        "prediction_agreement": agreement,
        "weighted_f1_norse": report(pred_norse),
        "weighted_f1_lava": report(pred_lava),
        "n_dialogues": len(dialogues),
        "precision": "float",
        "lava_seconds": round(lava_seconds, 2),
        "norse_seconds": round(norse_seconds, 3),
        "n_utterances": int(len(gold)),
        "spike_agreement_trained": tally.total.agreement,
        "spike_jaccard_trained": tally.total.jaccard,
        "prediction_agreement_trained": agreement,
        "weighted_f1_trained": report(pred_norse),
        **measures,
        "dataset": dataset_name,
        "split": split,
        "graphs_compiled": {m: compiled for m in model.cfg.modalities},
        "lava_networks": 1,
        "lava_ms_per_utterance": round(steady_ms, 3),
        "lava_compile_seconds": round(compile_seconds, 2),
        "norse_ms_per_utterance": round(1000 * norse_seconds / max(n_utterances, 1), 3),
        "max_logit_difference": worst,
        "lengths": sorted(lengths),
    }
