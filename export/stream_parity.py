"""The Norse stream model against its exported streaming graph, dialogue after dialogue, utterance by utterance.

Both are fed the same way a deployment would be: one utterance window at a time, state carried
over, reset at each new dialogue. Spikes are compared node by node (:class:`~.spike_measures.SpikeTally`:
agreement, Jaccard, mismatches per spike), logits by their largest difference and the predicted class.
"""
from __future__ import annotations

import time

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


def stream_parity(model: StreamModel, runner: StreamGraphRunner, dialogues, progress=None) -> dict:
    """Every dialogue through both — one runner, so one graph for every length; the report
    (SpikeTally's keys with reference ``norse``, other ``nir``)."""
    tally, agree, worst, lengths = SpikeTally(), 0, 0.0, []
    seconds = {"norse": 0.0, "nir": 0.0}
    for d in progress(dialogues) if progress else dialogues:
        turns = dialogue_turns(d, model.cfg.modalities)
        ref_logits, ref_spikes, ref_s = norse_stream(model, turns)
        logits, spikes, s = graph_stream(runner, turns)
        tally.add(ref_spikes, spikes)
        agree += int((ref_logits.argmax(-1) == logits.argmax(-1)).sum())
        worst = max(worst, float(np.abs(ref_logits - logits).max()))
        lengths.append(len(turns))
        seconds["norse"] += ref_s
        seconds["nir"] += s
    utterances = sum(lengths)
    return {**tally.report("norse", "nir"), "prediction_agreement": agree / utterances, "max_logit_difference": worst,
            "dialogues": len(lengths), "utterances": utterances, "lengths": sorted(set(lengths)),
            "ms_per_utterance": {k: 1000 * v / utterances for k, v in seconds.items()}}
