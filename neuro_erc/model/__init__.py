"""The models: SpikEmo (``arch`` "spikemo", the paper's hybrid) and the stream model ("stream",
causal and fully spiking). :func:`build_model` is the one place a config becomes a model."""
from __future__ import annotations

from typing import TYPE_CHECKING

from .spikemo import SpikEmo
from .stream import StreamModel

if TYPE_CHECKING:
    from ..run_config import TrainConfig

ARCHS = ("spikemo", "stream")


def build_model(cfg: "TrainConfig") -> SpikEmo | StreamModel:
    """The untrained model ``cfg.arch`` names, for ``cfg.model`` (input widths and classes filled in)."""
    return StreamModel(cfg.model) if cfg.arch == "stream" else SpikEmo(cfg.model)
