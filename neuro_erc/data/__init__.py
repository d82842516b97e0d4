"""Dialogues, datasets, loaders and batching."""
from .batching import Batch, collate, iterate_batches
from .types import IGNORE_LABEL, MODALITIES, DataError, Dialogue, DialogueDataset, LabelSet, Utterance

__all__ = [
    "Batch", "collate", "iterate_batches", "IGNORE_LABEL", "MODALITIES", "DataError",
    "Dialogue", "DialogueDataset", "LabelSet", "Utterance",
]
