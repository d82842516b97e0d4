"""Dialogues → padded, utterance-first tensors.

Shapes use L = longest dialogue in the batch, B = batch size, D_m = feature dim of modality m.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch

from .types import IGNORE_LABEL, DataError, Dialogue


@dataclass
class Batch:
    features: dict[str, torch.Tensor]  # m -> [L, B, D_m], zeros at padding
    mask: torch.Tensor  # [L, B] bool, True at real utterances
    speakers: torch.Tensor  # [L, B] long, speaker index within its dialogue (0 at padding)
    labels: torch.Tensor  # [L, B] long, IGNORE_LABEL at padding
    dialogue_ids: list[str]

    def to(self, device: torch.device | str) -> "Batch":
        return Batch(
            {m: x.to(device) for m, x in self.features.items()},
            self.mask.to(device),
            self.speakers.to(device),
            self.labels.to(device),
            self.dialogue_ids,
        )


def collate(dialogues: Sequence[Dialogue], modalities: Sequence[str]) -> Batch:
    if not dialogues:
        raise DataError("cannot batch zero dialogues")
    L, B = max(len(d) for d in dialogues), len(dialogues)
    features: dict[str, np.ndarray] = {}
    for m in modalities:
        first = dialogues[0].utterances[0].features.get(m)
        if first is None:
            raise DataError(f"dialogue {dialogues[0].id!r} has no {m!r} features; it has {list(dialogues[0].modalities)}")
        features[m] = np.zeros((L, B, first.shape[-1]), dtype=np.float32)
    mask = np.zeros((L, B), dtype=bool)
    speakers = np.zeros((L, B), dtype=np.int64)
    labels = np.full((L, B), IGNORE_LABEL, dtype=np.int64)
    for b, dialogue in enumerate(dialogues):
        speaker_ids: dict[str, int] = {}
        for i, utt in enumerate(dialogue.utterances):
            for m in modalities:
                if m not in utt.features:
                    raise DataError(f"dialogue {dialogue.id!r}, utterance {i}: no {m!r} features")
                features[m][i, b] = utt.features[m]
            mask[i, b] = True
            speakers[i, b] = speaker_ids.setdefault(utt.speaker, len(speaker_ids))
            labels[i, b] = utt.label
    return Batch(
        {m: torch.from_numpy(x) for m, x in features.items()},
        torch.from_numpy(mask),
        torch.from_numpy(speakers),
        torch.from_numpy(labels),
        [d.id for d in dialogues],
    )


def batch_orders(n: int, batch_size: int, shuffle: bool = False, seed: int = 0) -> Iterator[list[int]]:
    """Indices of each batch of ``batch_size`` out of ``n`` items; shuffled deterministically by ``seed``."""
    order = list(range(n))
    if shuffle:
        random.Random(seed).shuffle(order)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def iterate_batches(
    dialogues: Sequence[Dialogue],
    modalities: Sequence[str],
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
) -> Iterator[Batch]:
    """Yield batches of ``batch_size`` dialogues; shuffled deterministically by ``seed``."""
    for indices in batch_orders(len(dialogues), batch_size, shuffle, seed):
        yield collate([dialogues[i] for i in indices], modalities)


def iterate_shards(
    dialogues: Sequence[Dialogue],
    modalities: Sequence[str],
    batch_size: int,
    rank: int,
    world: int,
    shuffle: bool = False,
    seed: int = 0,
) -> Iterator[tuple[Batch, float]]:
    """Process ``rank``'s share of each batch of :func:`iterate_batches`, with its loss scale.

    For data-parallel training over ``world`` processes: each yields the same number of
    steps, and rank r takes dialogues r, r + world, ... of every batch. DistributedDataParallel
    averages gradients over the processes, so a shard's mean loss is scaled by
    ``world · n_r / N`` (n_r of the batch's N labelled utterances are on rank r); the
    averaged gradient is then that of the whole batch's mean loss, as in one process — exactly
    for per-utterance mean losses (cross-entropy, DSC), approximately for batch statistics
    (soft-HGR's covariance, class-weighted normalisation). A rank whose share is empty (a
    last batch smaller than ``world``) runs the batch's first dialogue with scale 0, so every
    rank takes part in every step.
    """
    def labelled(d: Dialogue) -> int:
        return sum(u.label != IGNORE_LABEL for u in d.utterances)

    for indices in batch_orders(len(dialogues), batch_size, shuffle, seed):
        total = sum(labelled(dialogues[i]) for i in indices)
        mine = [dialogues[i] for i in indices[rank::world]]
        if not mine or total == 0:
            yield collate(mine or [dialogues[indices[0]]], modalities), 0.0
        else:
            yield collate(mine, modalities), world * sum(labelled(d) for d in mine) / total
