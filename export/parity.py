"""Hybrid runs: host parts in PyTorch, the spiking cores in Lava, compared with all-Norse runs.

For every dialogue and modality the core's input (``model.core_inputs``) is sent through the
Lava network of the core's NIR graph for that dialogue's length; the Lava core output (the
sum of the residual stream's spike trains) replaces the Norse one in ``model.forward``.

The Norse side runs the *exported* network (:func:`~.norse_ref.exported_core`): batch norm
folded into the Linears, each synaptic current the exact sum rounded once to float32 — what
Lava computes (:mod:`.exact_sums`). The analog input's current is computed once, by that Norse
run, and handed to Lava, so float Lava is spike-exact against it. The trained model itself
(batch norm unfolded, float32 sums in BLAS's order) rounds differently, so a neuron whose
voltage lands within an ulp of its threshold can fire one step apart, and the difference
spreads downstream; the run also reports agreement and F1 against that model, so the effect
is visible apart from the export's.

Reported (the PARITY.json contract): ``spike_agreement`` over every exported neuron and step,
with ``spike_jaccard``, ``firing_rate_norse``, ``firing_rate_lava``, ``mismatches_per_spike`` and
``spike_mismatches`` (:mod:`.spike_measures`; agreement alone rewards silence), each also per
node (``<key>_by_node``); ``prediction_agreement`` over labelled utterances, weighted F1 of both
runs, the number of dialogues, the precision, and the seconds spent in Lava (building,
compiling and running) and in the Norse cores; plus ``spike_agreement_trained``,
``spike_jaccard_trained``, ``prediction_agreement_trained`` and ``weighted_f1_trained`` against
the trained model.

Lava runs either the cores' graphs rebuilt from the model, or an exported artefact
(:class:`~.artefacts.ExportedCores`), after checking that it was exported from this model's cores
and is long enough for every dialogue.
"""
from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import torch

from neuro_erc.data.batching import iterate_batches
from neuro_erc.errors import ExportError
from neuro_erc.evaluate import classification_report

from .artefacts import ExportedCores
from .lava_build import build_plan
from .lava_run import LavaCore, require_lava
from .nir_graph import core_shape, core_to_nir
from .norse_ref import dialogue_currents, dialogue_spikes, exported_core, record_core
from .size_model import DEFAULT_LAVA_BUDGET_BYTES, check_fits
from .spike_measures import SpikeTally


@dataclass
class _Job:
    batch: int
    index: int  # dialogue within the batch
    modality: str
    length: int
    x: np.ndarray  # [D_in, L] core input
    currents: dict[str, np.ndarray]  # the host's current of each input-driven node, [C, L]


@torch.no_grad()
def hybrid_parity(model, dialogues, labels, dataset_name: str, split: str, precision: str = "float",
                  batch_size: int = 16, budget_bytes: int = DEFAULT_LAVA_BUDGET_BYTES,
                  exported: ExportedCores | None = None, progress=lambda it: it) -> dict:
    """Run ``dialogues`` through ``model`` with Norse cores and with Lava cores; the PARITY dict.

    Lava runs ``exported`` (refused unless exported from ``model``'s cores for dialogues this
    long), else each core's graph built from ``model`` for each dialogue length.
    """
    model.eval()
    modalities = list(model.cfg.modalities)
    cores = {m: dswa.core for m, dswa in model.cores.items()}
    if not cores:
        raise ExportError("this model has no spiking cores (trained without DSWA): nothing runs on Lava")
    lengths = sorted({len(d.utterances) for d in dialogues})
    if exported is not None:
        exported.check(cores)
        exported.check_lengths(len(d.utterances) for d in dialogues)
    require_lava()
    for m, core in cores.items():
        for length in lengths:
            check_fits(core_shape(core), length, budget_bytes, target="lava")
    plan_for = exported.plan if exported is not None else lambda m, length: build_plan(core_to_nir(cores[m], length))

    exported_cores = {m: exported_core(core) for m, core in cores.items()}
    batches = list(iterate_batches(dialogues, modalities, batch_size))
    jobs, norse_out, norse_spikes, trained_spikes, norse_seconds = [], [], [], [], 0.0
    for i, batch in enumerate(batches):
        inputs = model.core_inputs(batch)
        outs, spikes, trained = {}, {}, {}
        for m in cores:
            currents = {}
            t0 = time.perf_counter()
            outs[m], spikes[m] = record_core(exported_cores[m], inputs[m], batch.mask, currents)
            norse_seconds += time.perf_counter() - t0
            trained[m] = record_core(cores[m], inputs[m], batch.mask)[1]
            for b, length in enumerate(batch.mask.sum(0).tolist()):
                jobs.append(_Job(i, b, m, length, inputs[m][:length, b].cpu().numpy().T,
                                 dialogue_currents(currents, b, length)))
        norse_out.append(outs)
        norse_spikes.append(spikes)
        trained_spikes.append(trained)

    lava_out = [{m: torch.zeros_like(o) for m, o in outs.items()} for outs in norse_out]
    tally, tally_trained = SpikeTally(), SpikeTally()
    groups = defaultdict(list)
    for job in jobs:
        groups[(job.modality, job.length)].append(job)
    t0 = time.perf_counter()
    for (m, length), group in progress(sorted(groups.items())):
        with LavaCore(plan_for(m, length), precision) as lava:
            for job in group:
                spikes = lava.run(job.x, job.currents)
                tally.add(dialogue_spikes(norse_spikes[job.batch][m], job.index, length), spikes, prefix=f"{m}:")
                tally_trained.add(dialogue_spikes(trained_spikes[job.batch][m], job.index, length), spikes)
                lava_out[job.batch][m][:, :length, job.index] = torch.from_numpy(lava.output(spikes)).permute(0, 2, 1)
    lava_seconds = time.perf_counter() - t0

    gold, pred_norse, pred_lava, pred_trained = [], [], [], []
    for batch, outs, louts in zip(batches, norse_out, lava_out):
        keep = (batch.mask & (batch.labels >= 0)).T
        gold.append(batch.labels.T[keep].numpy())
        pred_norse.append(model(batch, core_outputs=outs).logits.argmax(-1).T[keep].numpy())
        pred_lava.append(model(batch, core_outputs=louts).logits.argmax(-1).T[keep].numpy())
        pred_trained.append(model(batch).logits.argmax(-1).T[keep].numpy())
    gold, pred_norse, pred_lava, pred_trained = (np.concatenate(a) for a in (gold, pred_norse, pred_lava, pred_trained))
    report = lambda pred: classification_report(gold, pred, labels, dataset_name, split)  # noqa: E731
    agree = lambda a, b: float(np.mean(a == b)) if len(gold) else float("nan")  # noqa: E731
    measures = tally.report(reference="norse", other="lava")
    return {
        "spike_agreement": measures.pop("spike_agreement"),
        "prediction_agreement": agree(pred_norse, pred_lava),
        "weighted_f1_norse": report(pred_norse)["weighted_f1"],
        "weighted_f1_lava": report(pred_lava)["weighted_f1"],
        "n_dialogues": len(dialogues),
        "precision": precision,
        "lava_seconds": round(lava_seconds, 2),
        "norse_seconds": round(norse_seconds, 3),
        "n_utterances": int(len(gold)),
        "spike_agreement_trained": tally_trained.total.agreement,
        "spike_jaccard_trained": tally_trained.total.jaccard,
        "prediction_agreement_trained": agree(pred_trained, pred_lava),
        "weighted_f1_trained": report(pred_trained)["weighted_f1"],
        **measures,
        "dataset": dataset_name,
        "split": split,
    }
