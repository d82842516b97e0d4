"""The models: SpikEmo (``arch`` "spikemo", the paper's hybrid), the stream model ("stream",
causal and fully spiking) and the plain speaker-aware BiGRU baseline ("bigru", nothing spiking).
:func:`build_model` is the one place a config becomes a model."""
from __future__ import annotations

from typing import TYPE_CHECKING

from .bigru import BiGRUClassifier
from .spikemo import SpikEmo
from .stream import StreamModel

if TYPE_CHECKING:
    from ..run_config import TrainConfig

ARCHS = ("spikemo", "stream", "bigru")
_MODELS = {"spikemo": SpikEmo, "stream": StreamModel, "bigru": BiGRUClassifier}


def build_model(cfg: "TrainConfig") -> SpikEmo | StreamModel | BiGRUClassifier:
    """The untrained model ``cfg.arch`` names, for ``cfg.model`` (input widths and classes filled in)."""
    return _MODELS[cfg.arch](cfg.model)
