"""The models: SpikEmo (``arch`` "spikemo", the paper's hybrid), the stream model ("stream",
causal and fully spiking) and the plain speaker-aware BiGRU baseline ("bigru", nothing spiking).
:func:`build_model` is the one place a config becomes a model; with ``ann_twin`` it builds the
architecture's trained-ANN twin instead (:data:`TWIN_ARCHS`; the stream model's is :mod:`.ann_twin`)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from .ann_twin import StreamTwin
from .bigru import BiGRUClassifier
from .spikemo import SpikEmo
from .stream import StreamModel

if TYPE_CHECKING:
    from ..run_config import TrainConfig

ARCHS = ("spikemo", "stream", "bigru")
_MODELS = {"spikemo": SpikEmo, "stream": StreamModel, "bigru": BiGRUClassifier}
_TWINS = {"stream": StreamTwin}  # the spiking parts replaced by ReLU counterparts, one pass per utterance
TWIN_ARCHS = tuple(_TWINS)


def build_model(cfg: "TrainConfig") -> SpikEmo | StreamModel | BiGRUClassifier | StreamTwin:
    """The untrained model ``cfg.arch`` names (its ANN twin with ``cfg.ann_twin``), for ``cfg.model``
    (input widths and classes filled in)."""
    return (_TWINS if cfg.ann_twin else _MODELS)[cfg.arch](cfg.model)
