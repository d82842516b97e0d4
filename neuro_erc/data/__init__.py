"""Dialogues, datasets, loaders and batching."""
from .batching import Batch, collate, iterate_batches
from .registry import DATASETS, load_dataset
from .types import IGNORE_LABEL, MODALITIES, DataError, Dialogue, DialogueDataset, LabelSet, Utterance

__all__ = [
    "Batch", "collate", "iterate_batches", "IGNORE_LABEL", "MODALITIES", "DataError",
    "Dialogue", "DialogueDataset", "LabelSet", "Utterance", "DATASETS", "load_dataset",
]
