"""Hybrid runs: host parts in PyTorch, the spiking cores in Lava, compared with all-Norse runs.

For every dialogue and modality the core's input (``model.core_inputs``) is sent through the
Lava network of the core's NIR graph for that dialogue's length; the Lava core output (the
sum of the residual stream's spike trains) replaces the Norse one in ``model.forward``.

The Norse side runs the *exported* network: each core with batch norm folded into its
Linears (``SpikingCore.folded()``). Folding is exact in real arithmetic but rounds differently
in float32, so a neuron whose voltage lands within an ulp of its threshold can fire one step
apart in the folded and unfolded cores, and the difference spreads downstream; the run also
reports the trained (unfolded) model's agreement and F1, so that effect is visible apart from
the export's.

Reported (the PARITY.json contract): ``spike_agreement`` over every exported neuron and step,
``prediction_agreement`` over labelled utterances, weighted F1 of both runs, the number of
dialogues, the precision, and the seconds spent in Lava (building, compiling and running) and
in the Norse cores; plus ``spike_agreement_trained``, ``prediction_agreement_trained`` and
``weighted_f1_trained`` against the unfolded model, and per-node agreement.

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
from .norse_ref import dialogue_spikes, record_core
from .size_model import DEFAULT_LAVA_BUDGET_BYTES, check_fits


@dataclass
class _Job:
    batch: int
    index: int  # dialogue within the batch
    modality: str
    length: int
    x: np.ndarray  # [D_in, L] core input


class SpikeTally:
    """Running count of agreeing (neuron, step) pairs between two spike dicts."""

    def __init__(self):
        self.agree, self.total = 0, 0
        self.by_node: dict[str, list[int]] = defaultdict(lambda: [0, 0])

    def add(self, reference: dict[str, np.ndarray], other: dict[str, np.ndarray], prefix: str = "") -> None:
        for name, ref in reference.items():
            same = int(np.count_nonzero((ref != 0) == (other[name] != 0)))
            self.agree += same
            self.total += ref.size
            self.by_node[prefix + name][0] += same
            self.by_node[prefix + name][1] += ref.size

    @property
    def agreement(self) -> float:
        return self.agree / self.total if self.total else float("nan")


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

    folded = {m: core.folded() for m, core in cores.items()}
    batches = list(iterate_batches(dialogues, modalities, batch_size))
    jobs, norse_out, norse_spikes, trained_spikes, norse_seconds = [], [], [], [], 0.0
    for i, batch in enumerate(batches):
        inputs = model.core_inputs(batch)
        outs, spikes, trained = {}, {}, {}
        for m in cores:
            t0 = time.perf_counter()
            outs[m], spikes[m] = record_core(folded[m], inputs[m], batch.mask)
            norse_seconds += time.perf_counter() - t0
            trained[m] = record_core(cores[m], inputs[m], batch.mask)[1]
            for b, length in enumerate(batch.mask.sum(0).tolist()):
                jobs.append(_Job(i, b, m, length, inputs[m][:length, b].cpu().numpy().T))
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
                spikes = lava.run(job.x)
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
    return {
        "spike_agreement": tally.agreement,
        "prediction_agreement": agree(pred_norse, pred_lava),
        "weighted_f1_norse": report(pred_norse)["weighted_f1"],
        "weighted_f1_lava": report(pred_lava)["weighted_f1"],
        "n_dialogues": len(dialogues),
        "precision": precision,
        "lava_seconds": round(lava_seconds, 2),
        "norse_seconds": round(norse_seconds, 3),
        "n_utterances": int(len(gold)),
        "spike_agreement_trained": tally_trained.agreement,
        "prediction_agreement_trained": agree(pred_trained, pred_lava),
        "weighted_f1_trained": report(pred_trained)["weighted_f1"],
        "spike_agreement_by_node": {name: a / n for name, (a, n) in sorted(tally.by_node.items())},
        "dataset": dataset_name,
        "split": split,
    }
