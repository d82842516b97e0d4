"""The Norse stream model against its exported streaming graph, dialogue after dialogue, utterance by utterance.

Both are fed the same way a deployment would be: one utterance window at a time, state carried
over, reset at each new dialogue. Spikes are compared node by node (:class:`~.spike_measures.SpikeTally`:
agreement, Jaccard, mismatches per spike), logits by their largest difference and the predicted class.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from neuro_erc.model.stream import StreamModel
from neuro_erc.snn.stateful import BoxLIF, CubaLIF

from .spike_measures import SpikeTally
from .stream_graph import StreamGraphRunner

Turn = tuple[dict[str, np.ndarray], int, bool]  # features by modality, speaker index, same speaker as previous


def dialogue_turns(dialogue, modalities) -> list[Turn]:
    """Each utterance's inputs: speakers indexed in order of first turn, as training batches do."""
    index, turns = {}, []
    for i, utt in enumerate(dialogue.utterances):
        same = i > 0 and utt.speaker == dialogue.utterances[i - 1].speaker
        turns.append(({m: utt.features[m] for m in modalities}, index.setdefault(utt.speaker, len(index)), same))
    return turns


def norse_stream(model: StreamModel, turns: list[Turn]) -> tuple[np.ndarray, dict[str, np.ndarray], float]:
    """The model fed by :meth:`StreamModel.step`: logits [L, C], each population's spikes
    [L·T, N] keyed like the flattened graph's nodes (``<modality>.<layer>``), seconds spent."""
    names = {mod: name.split(".", 1)[1] for name, mod in model.named_modules() if isinstance(mod, (BoxLIF, CubaLIF))}
    spikes = {name: [] for name in names.values()}
    hooks = [mod.register_forward_hook(lambda _m, _i, out, n=n: spikes[n].append(out[:, 0].numpy()))
             for mod, n in names.items()]
    state, logits, seconds = {}, [], 0.0
    try:
        with torch.no_grad():
            for features, speaker, same in turns:
                x = {m: torch.from_numpy(np.asarray(v, dtype=np.float32))[None] for m, v in features.items()}
                t0 = time.perf_counter()
                logits.append(model.step(x, torch.tensor([speaker]), torch.tensor([same]), state)[0].numpy())
                seconds += time.perf_counter() - t0
    finally:
        for hook in hooks:
            hook.remove()
    return np.stack(logits), {n: np.concatenate(z) for n, z in spikes.items()}, seconds


def graph_stream(runner: StreamGraphRunner, turns: list[Turn]) -> tuple[np.ndarray, dict[str, np.ndarray], float]:
    """The same through the exported graph, from rest."""
    runner.reset()
    logits, spikes, seconds = [], {}, 0.0
    for features, speaker, same in turns:
        t0 = time.perf_counter()
        out, z = runner.utterance(features, speaker, same)
        seconds += time.perf_counter() - t0
        logits.append(out)
        for n, s in z.items():
            spikes.setdefault(n, []).append(s)
    return np.stack(logits), {n: np.concatenate(z) for n, z in spikes.items()}, seconds


@dataclass
class StreamComparison:
    """What :func:`compare_streams` saw: the spike tally, and per utterance (dialogues concatenated)
    the gold label, both runs' predicted classes; the largest logit difference; dialogue lengths;
    seconds spent in each run (the runner's include any compile)."""

    tally: SpikeTally = field(default_factory=SpikeTally)
    gold: list[int] = field(default_factory=list)
    reference: list[int] = field(default_factory=list)
    other: list[int] = field(default_factory=list)
    max_logit_difference: float = 0.0
    lengths: list[int] = field(default_factory=list)
    reference_seconds: float = 0.0
    other_seconds: float = 0.0


def compare_streams(model: StreamModel, runner, dialogues, progress=None) -> StreamComparison:
    """Every dialogue through the Norse model and through ``runner`` (a :class:`StreamGraphRunner`
    or anything with its ``reset``/``utterance``: the Lava network), utterance by utterance."""
    seen = StreamComparison()
    for d in progress(dialogues) if progress else dialogues:
        turns = dialogue_turns(d, model.cfg.modalities)
        ref_logits, ref_spikes, ref_s = norse_stream(model, turns)
        logits, spikes, s = graph_stream(runner, turns)
        seen.tally.add(ref_spikes, spikes)
        seen.gold += [u.label for u in d.utterances]
        seen.reference += ref_logits.argmax(-1).tolist()
        seen.other += logits.argmax(-1).tolist()
        seen.max_logit_difference = max(seen.max_logit_difference, float(np.abs(ref_logits - logits).max()))
        seen.lengths.append(len(turns))
        seen.reference_seconds += ref_s
        seen.other_seconds += s
    return seen


def stream_parity(model: StreamModel, runner: StreamGraphRunner, dialogues, progress=None) -> dict:
    """Every dialogue through both — one runner, so one graph for every length; the report
    (SpikeTally's keys with reference ``norse``, other ``nir``)."""
    seen = compare_streams(model, runner, dialogues, progress)
    utterances = sum(seen.lengths)
    agree = sum(a == b for a, b in zip(seen.reference, seen.other))
    seconds = {"norse": seen.reference_seconds, "nir": seen.other_seconds}
    return {**seen.tally.report("norse", "nir"), "prediction_agreement": agree / utterances,
            "max_logit_difference": seen.max_logit_difference, "dialogues": len(seen.lengths),
            "utterances": utterances, "lengths": sorted(set(seen.lengths)),
            "ms_per_utterance": {k: 1000 * v / utterances for k, v in seconds.items()}}
