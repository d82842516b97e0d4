"""What a training run is: :class:`TrainConfig`, the device it names and the data it trains on.

Kept apart from ``train.py`` so that everything which only *reads* a run (a checkpoint, a
benchmark row, an export) can know its config without importing the training loop.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .data.registry import load_dataset
from .data.types import DialogueDataset
from .losses import LossConfig
from .model.spikemo import ModelConfig


@dataclass
class TrainConfig:
    dataset: str = "synthetic"
    data: str | None = None
    text_model: str = "minilm"  # meld/iemocap text features: 'minilm' or a local (fine-tuned) model directory
    variant: str | None = None  # multiemo/dialoguernn pickles: 'meld' or 'iemocap' when the path does not say
    epochs: int = 50
    batch_size: int = 32  # dialogues per step (paper: MELD 64, IEMOCAP 32)
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = 1e-5
    lr_decay: float = 0.95  # multiply the LR by this ...
    lr_decay_every: int = 10  # ... every this many epochs
    patience: int = 10  # stop after this many epochs without a better dev W-F1
    grad_clip: float = 5.0
    seed: int = 0
    device: str = "auto"
    threads: int = 0  # torch CPU threads; 0 = torch's default
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def load_config_dataset(cfg: TrainConfig, name: str | None = None, data: str | None = None) -> DialogueDataset:
    """The dataset ``cfg`` trains on — or dataset ``name`` at ``data`` — with ``cfg``'s features.

    Commands that take a checkpoint load their data through this, so a model trained on
    fine-tuned text features is never fed MiniLM's (same width, silently wrong).
    """
    if name is None:
        name, data = cfg.dataset, cfg.data
    return load_dataset(name, data, text_model=cfg.text_model, variant=cfg.variant)
