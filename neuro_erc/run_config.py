"""What a training run is: :class:`TrainConfig`, the device it names and the data it trains on.

Kept apart from ``train.py`` so that everything which only *reads* a run (a checkpoint, a
benchmark row, an export) can know its config without importing the training loop.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .config import check_choice, check_range, require
from .data.registry import DATASETS, VARIANTS, load_dataset
from .data.types import DialogueDataset
from .errors import ConfigError
from .losses import LossConfig
from .model import ARCHS, TWIN_ARCHS
from .model.bigru import check_bigru_model
from .model.spikemo import ModelConfig
from .model.stream import check_stream_core


SELECTIONS = ("best_dev", "last")


@dataclass
class TrainConfig:
    dataset: str = "synthetic"
    arch: str = "spikemo"  # "spikemo" (the paper's hybrid), "stream" (causal, fully spiking) or "bigru" (plain baseline): neuro_erc.model
    ann_twin: bool = False  # the arch's ANN twin: its spiking parts as ReLU counterparts, one pass per utterance (neuro_erc.model.ann_twin)
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
    selection: str = "best_dev"  # best.pt = the best dev epoch, or "last": the final epoch (epochs chosen beforehand, e.g. by --cv)
    ema: float = 0.0  # > 0: evaluate and save an exponential moving average of the weights with this decay per step
    init: str | None = None  # a checkpoint (best.pt) whose weights start training: fine-tuning, e.g. a spike budget on a trained model
    grad_clip: float = 5.0
    seed: int = 0
    device: str = "auto"
    threads: int = 0  # torch CPU threads; 0 = torch's default
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)

    def __post_init__(self) -> None:
        check_choice("dataset", self.dataset, DATASETS)
        check_choice("arch", self.arch, ARCHS)
        if self.arch == "stream":
            check_stream_core(self.model.core)
        require(self.arch == "stream" or not self.loss.rate_per_synapse, "loss.rate_per_synapse",
                f"false with arch {self.arch!r} (only the stream model declares each population's fan-out)",
                self.loss.rate_per_synapse)
        if self.arch == "bigru":
            check_bigru_model(self.model)
        if self.ann_twin:
            require(self.arch in TWIN_ARCHS, "ann_twin", f"false with arch {self.arch!r} (the ANN twin is built for "
                    f"arch {' and '.join(map(repr, TWIN_ARCHS))})", self.ann_twin)
            require(not self.loss.rate, "loss.rate", "0 with ann_twin (the twin has no spikes to budget)", self.loss.rate)
        if self.variant is not None:
            check_choice("variant", self.variant, VARIANTS)
        require(self.init != "", "init", "a checkpoint file or null", self.init)
        require(self.text_model != "", "text_model", "'minilm' or a model directory", self.text_model)
        for key in ("epochs", "batch_size", "lr_decay_every"):
            check_range(key, getattr(self, key), ge=1)
        check_range("patience", self.patience, ge=0)
        check_choice("selection", self.selection, SELECTIONS)
        check_range("ema", self.ema, ge=0, lt=1)
        check_range("threads", self.threads, ge=0, lt=2**31)  # torch takes a C int
        check_range("seed", self.seed, ge=0, lt=2**32)  # numpy's seed range
        for key in ("lr", "grad_clip"):
            check_range(key, getattr(self, key), gt=0)
        check_range("weight_decay", self.weight_decay, ge=0)
        check_range("lr_decay", self.lr_decay, gt=0, le=1)
        for i, beta in enumerate(self.betas):
            check_range(f"betas[{i}]", beta, ge=0, lt=1)
        check_device(self.device)
        require(not (self.loss.hgr and len(self.model.modalities) < 2), "loss.hgr",
                "0 with one modality (soft-HGR correlates pairs of modalities)", self.loss.hgr)


DEVICE_TYPES = ("cpu", "cuda", "mps")


def check_device(name: str) -> None:
    """``name`` must be 'auto' or a torch device string of a type we run on ('cpu', 'cuda:1', ...).

    Only the spelling is checked: a config written on a GPU machine stays readable on a CPU one.
    :func:`resolve_device` checks that the device exists.
    """
    try:
        ok = name == "auto" or torch.device(name).type in DEVICE_TYPES
    except RuntimeError:  # torch's error for a string that is not a device
        ok = False
    require(ok, "device", "'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'", name)


def resolve_device(name: str) -> torch.device:
    """The device ``name`` names, checked to exist here; 'auto' is CUDA if there is one, else the CPU."""
    check_device(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if (device.index or 0) >= count:
            raise ConfigError(f"device {name!r}: this machine has {count} CUDA device(s); use --device auto or cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {name!r}: MPS is not available on this machine; use --device auto or cpu")
    return device


def load_config_dataset(cfg: TrainConfig, name: str | None = None, data: str | None = None) -> DialogueDataset:
    """The dataset ``cfg`` trains on — or dataset ``name`` at ``data`` — with ``cfg``'s features.

    Commands that take a checkpoint load their data through this, so a model trained on
    fine-tuned text features is never fed MiniLM's (same width, silently wrong).
    """
    if name is None:
        name, data = cfg.dataset, cfg.data
    return load_dataset(name, data, text_model=cfg.text_model, variant=cfg.variant)
