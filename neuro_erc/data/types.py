"""The data model: utterances, dialogues, label sets and datasets with named splits.

Modalities are named by one letter: ``t`` (text), ``a`` (audio), ``v`` (visual).
Feature vectors are float32 numpy arrays; a dialogue either has a modality for every
utterance or for none of them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import DataError  # noqa: F401  (re-exported: loaders raise it)

MODALITIES = ("t", "a", "v")
IGNORE_LABEL = -100
"""Label id for padding and for utterances without a gold label (ignored by the losses)."""


@dataclass(frozen=True)
class LabelSet:
    """An ordered emotion vocabulary; a label's id is its position."""

    name: str
    labels: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)

    def index(self, label: str, where: str = "") -> int:
        try:
            return self.labels.index(label)
        except ValueError:
            raise DataError(
                f"{where}: unknown label {label!r}; expected one of {list(self.labels)}"
            ) from None


@dataclass
class Utterance:
    speaker: str
    label: int
    text: str = ""
    features: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class Dialogue:
    id: str
    utterances: list[Utterance]

    def __len__(self) -> int:
        return len(self.utterances)

    @property
    def modalities(self) -> tuple[str, ...]:
        if not self.utterances:
            return ()
        return tuple(m for m in MODALITIES if m in self.utterances[0].features)


@dataclass
class DialogueDataset:
    """A dataset: its label set and its splits (``train``, ``dev``, ``test``), each a list of dialogues."""

    name: str
    labels: LabelSet
    splits: dict[str, list[Dialogue]]

    def split(self, name: str) -> list[Dialogue]:
        if name not in self.splits:
            raise DataError(
                f"dataset {self.name!r} has no split {name!r}; it has {sorted(self.splits)}"
            )
        return self.splits[name]

    def feature_dims(self) -> dict[str, int]:
        """Feature dimension per modality, checked to agree across every split and utterance."""
        dims: dict[str, int] = {}
        for split, dialogues in self.splits.items():
            for dialogue in dialogues:
                for i, utt in enumerate(dialogue.utterances):
                    for m, vec in utt.features.items():
                        d = int(vec.shape[-1])
                        if dims.setdefault(m, d) != d:
                            raise DataError(
                                f"dataset {self.name!r}, split {split!r}, dialogue {dialogue.id!r}, "
                                f"utterance {i}: modality {m!r} has dimension {d}, expected {dims[m]} "
                                "as in the other utterances and splits"
                            )
        return dims

    def validate(self) -> None:
        """Raise DataError for empty dialogues, non-finite features, bad labels or mismatched dims."""
        n_labels = len(self.labels)
        for split, dialogues in self.splits.items():
            for dialogue in dialogues:
                where = f"dataset {self.name!r}, split {split!r}, dialogue {dialogue.id!r}"
                if not dialogue.utterances:
                    raise DataError(f"{where}: empty dialogue (expected at least one utterance)")
                mods = set(dialogue.utterances[0].features)
                for i, utt in enumerate(dialogue.utterances):
                    if utt.label != IGNORE_LABEL and not 0 <= utt.label < n_labels:
                        raise DataError(
                            f"{where}, utterance {i}: label id {utt.label} outside 0..{n_labels - 1}"
                        )
                    if set(utt.features) != mods:
                        raise DataError(
                            f"{where}, utterance {i}: modalities {sorted(utt.features)} differ from "
                            f"the dialogue's first utterance {sorted(mods)}"
                        )
                    for m, vec in utt.features.items():
                        if vec.ndim != 1:
                            raise DataError(f"{where}, utterance {i}: modality {m!r} has shape {vec.shape}, expected a vector")
                        if not np.all(np.isfinite(vec)):
                            raise DataError(f"{where}, utterance {i}: modality {m!r} has NaN or inf values")
        self.feature_dims()

    def stats(self, split: str) -> dict:
        """What ``neuro-erc data-stats`` prints."""
        dialogues = self.split(split)
        counts = {label: 0 for label in self.labels.labels}
        for d in dialogues:
            for u in d.utterances:
                if u.label != IGNORE_LABEL:
                    counts[self.labels.labels[u.label]] += 1
        return {
            "dataset": self.name,
            "split": split,
            "n_dialogues": len(dialogues),
            "n_utterances": sum(len(d) for d in dialogues),
            "label_counts": counts,
            "max_dialogue_len": max((len(d) for d in dialogues), default=0),
        }
