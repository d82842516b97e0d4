"""Evaluation: predictions over a split → REPORT.json (ARCHITECTURE.md keys) and a Table-II style print."""
from __future__ import annotations

import argparse
from typing import Callable, Sequence

import numpy as np
import torch
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from .data.batching import iterate_batches
from .data.types import DialogueDataset
from .io import write_json
from .snn.rates import SplitFiringRate


@torch.no_grad()
def predict(model, dialogues, modalities: Sequence[str], batch_size: int, device,
            after_batch: Callable[[torch.nn.Module], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Gold labels and predictions for every real, labelled utterance, in dialogue order;
    ``after_batch(model)`` runs after each forward (to read what the model kept of it)."""
    model.eval()
    gold, pred = [], []
    for batch in iterate_batches(dialogues, modalities, batch_size):
        batch = batch.to(device)
        logits = model(batch).logits
        if after_batch is not None:
            after_batch(model)
        keep = batch.mask & (batch.labels >= 0)
        # transpose to [B, L] so utterances come out dialogue by dialogue
        gold.append(batch.labels.T[keep.T].cpu().numpy())
        pred.append(logits.argmax(-1).T[keep.T].cpu().numpy())
    return np.concatenate(gold), np.concatenate(pred)


def classification_report(gold: np.ndarray, pred: np.ndarray, labels: Sequence[str], dataset: str, split: str) -> dict:
    ids = list(range(len(labels)))
    per_class = f1_score(gold, pred, labels=ids, average=None, zero_division=0)
    return {
        "dataset": dataset,
        "split": split,
        "n_utterances": int(len(gold)),
        "weighted_f1": round(100 * float(f1_score(gold, pred, labels=ids, average="weighted", zero_division=0)), 2),
        "accuracy": round(100 * float(accuracy_score(gold, pred)), 2),
        "labels": list(labels),
        "per_class_f1": {label: round(100 * float(f), 2) for label, f in zip(labels, per_class)},
        "confusion": confusion_matrix(gold, pred, labels=ids).tolist(),
    }


def evaluate_split(model, dataset: DialogueDataset, split: str, modalities, batch_size: int, device) -> dict:
    """The classification report of ``split``; for a spiking model with its ``firing_rate``
    (spikes per neuron per step over the split's real utterances, the bench's definition) and,
    where its populations declare their fan-out, ``synaptic_rate`` (synaptic events per synapse
    per step, :mod:`neuro_erc.snn.rates`)."""
    spikes = SplitFiringRate()
    gold, pred = predict(model, dataset.split(split), modalities, batch_size, device, after_batch=spikes.add)
    report = classification_report(gold, pred, dataset.labels.labels, dataset.name, split)
    if spikes.rate is not None:
        report["firing_rate"] = round(spikes.rate, 6)
    if spikes.synaptic_rate is not None:
        report["synaptic_rate"] = round(spikes.synaptic_rate, 6)
    return report


def format_table(report: dict) -> str:
    """Per-class F1, accuracy and weighted F1 in one row, as in the SpikEmo paper's Table II."""
    labels = report["labels"]
    width = max(8, *(len(label) for label in labels))
    header = " ".join(f"{label:>{width}}" for label in labels) + f" {'Acc':>{width}} {'W-F1':>{width}}"
    row = " ".join(f"{report['per_class_f1'][label]:>{width}.2f}" for label in labels)
    row += f" {report['accuracy']:>{width}.2f} {report['weighted_f1']:>{width}.2f}"
    title = f"{report['dataset']} / {report['split']}  ({report['n_utterances']} utterances)"
    return f"{title}\n{header}\n{row}"


def run(args: argparse.Namespace) -> int:
    from .checkpoint import Checkpoint
    from .run_config import resolve_device

    device = resolve_device(args.device)
    ckpt = Checkpoint.load(args.checkpoint, device)
    model = ckpt.model(device)
    dataset = ckpt.dataset(args.dataset, args.data)
    report = evaluate_split(model, dataset, args.split, model.cfg.modalities, args.batch_size, device)
    write_json(args.out, report)
    print(format_table(report))
    return 0


def register(subparsers) -> None:
    from .data.registry import DATASETS

    parser = subparsers.add_parser("evaluate", help="evaluate a checkpoint on a split; writes REPORT.json")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--dataset", choices=DATASETS, required=True)
    parser.add_argument("--data")
    parser.add_argument("--split", required=True, choices=["train", "dev", "test"])
    parser.add_argument("--out", required=True, help="REPORT.json path")
    parser.add_argument("--batch-size", dest="batch_size", type=int, default=32)
    parser.add_argument("--device", default="auto")
    parser.set_defaults(func=run)
