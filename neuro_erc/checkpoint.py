"""Checkpoints that cannot run code when they are read.

A checkpoint is one file in the `safetensors <https://github.com/huggingface/safetensors>`_
format: a JSON header followed by raw tensor bytes. Reading it parses JSON and copies
bytes — nothing is unpickled, so a file someone hands you cannot execute anything.

* tensors ``model.<name>``: the model's weights (its ``state_dict``);
* tensors ``state.<n>``: in a resumable checkpoint (``last.pt``), the tensors of the
  optimiser, scheduler and RNG states;
* header metadata ``"neuro_erc"``: JSON with the format version, the run's
  :class:`~neuro_erc.run_config.TrainConfig`, the label names, epoch, best dev W-F1 and
  the non-tensor part of the training state (tensors replaced by ``{"__tensor__": key}``).

The files keep the run-directory names other tools pass as ``--checkpoint``: ``best.pt``
and ``last.pt``. Files written by neuro-erc 0.1 (``torch.save`` pickles) are read only
through ``torch.load(weights_only=True)``, which refuses any object that is not a plain
container, number, string or tensor; what it refuses is refused here too, with the reason.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .config import from_dict, to_dict
from .data.types import DataError, DialogueDataset
from .errors import CheckpointError, ConfigError
from .io import atomic_path
from .run_config import TrainConfig, load_config_dataset

FORMAT = 2  # 1 was neuro-erc 0.1's torch.save pickle
HEADER_KEY = "neuro_erc"
_TORCH_ZIP_MAGIC = b"PK\x03\x04"  # what torch.save has written since torch 1.6


@dataclass
class Checkpoint:
    """A trained model and what it needs to be used: config, labels, progress.

    Fields:
        config: the run's full config (``config.model`` carries the input widths and class count).
        labels: label names in class-id order.
        weights: the model's ``state_dict``.
        epoch: the epoch these weights are from (0-based).
        best_f1: best dev weighted F1 (percent) up to ``epoch``.
        best_epoch: the epoch that reached it.
        training_state: optimiser/scheduler/RNG state for ``--resume`` (``last.pt`` only): a tree of
            dicts, lists, tuples, numbers, strings and tensors.
        source: the file this was loaded from (named in error messages).
    """

    config: TrainConfig
    labels: list[str]
    weights: dict[str, torch.Tensor]
    epoch: int
    best_f1: float
    best_epoch: int
    training_state: Any = None
    source: Path | None = None

    # ---- writing --------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write atomically: a crash leaves the previous file at ``path`` or the new one, never half of one."""
        tensors = {f"model.{name}": tensor for name, tensor in self.weights.items()}
        state = _encode(self.training_state, tensors)
        header = {
            "format": FORMAT,
            "config": to_dict(self.config),
            "labels": list(self.labels),
            "epoch": self.epoch,
            "best_f1": self.best_f1,
            "best_epoch": self.best_epoch,
            "training_state": state,
        }
        # safetensors refuses tensors that share memory or are not contiguous: give it private copies.
        tensors = {key: value.detach().to("cpu", copy=True).contiguous() for key, value in tensors.items()}
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata={HEADER_KEY: json.dumps(header)})

    # ---- reading --------------------------------------------------------------

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
        """Read and validate ``path``; every problem is a :class:`CheckpointError` naming the file."""
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"{path}: no checkpoint file there")
        with open(path, "rb") as fh:
            start = fh.read(4)
        if start == _TORCH_ZIP_MAGIC:
            header, tensors = _read_legacy(path)
        else:
            header, tensors = _read_safetensors(path, device)
        ckpt = _from_header(header, tensors, path)
        ckpt.check_finite()
        return ckpt

    def check_finite(self) -> None:
        for name, tensor in self.weights.items():
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                bad = int((~torch.isfinite(tensor)).sum())
                raise CheckpointError(f"{self.source}: weight {name!r} has {bad} non-finite values (NaN/Inf); "
                                      "the run that wrote it diverged")

    # ---- using ----------------------------------------------------------------

    def model(self, device: str | torch.device = "cpu"):
        """The model in eval mode, with these weights."""
        from .model import build_model

        model = build_model(self.config)
        try:
            model.load_state_dict(self.weights)
        except RuntimeError as err:  # missing/unexpected keys, wrong shapes
            raise CheckpointError(f"{self.source}: the weights do not fit the model its config describes: "
                                  f"{_first_line(err)}") from None
        return model.to(device).eval()

    def dataset(self, name: str | None = None, data: str | None = None) -> DialogueDataset:
        """Dataset ``name`` at ``data`` (default: the one it trained on) read with this checkpoint's
        features (its text encoder), refused if its labels differ from the checkpoint's."""
        dataset = load_config_dataset(self.config, name, data)
        self.require_labels(dataset)
        return dataset

    def require_labels(self, dataset: DialogueDataset) -> None:
        if list(dataset.labels.labels) != self.labels:
            raise DataError(f"{self.source}: checkpoint labels {self.labels} differ from dataset {dataset.name!r} "
                            f"labels {list(dataset.labels.labels)}")


# ---- the tree codec: nested containers ⇄ JSON + named tensors --------------------


def _encode(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """JSON-able form of ``obj``; its tensors move into ``tensors`` under ``state.<n>``."""
    if isinstance(obj, torch.Tensor):
        key = f"state.{len(tensors)}"  # unique: ``tensors`` only grows
        tensors[key] = obj
        return {"__tensor__": key}
    if isinstance(obj, dict):
        return {"__dict__": [[_encode(k, tensors), _encode(v, tensors)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, tensors) for v in obj]}
    if isinstance(obj, list):
        return [_encode(v, tensors) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store a {type(obj).__name__} in a checkpoint")


def _decode(obj: Any, tensors: dict[str, torch.Tensor], where: Path) -> Any:
    if isinstance(obj, list):
        return [_decode(v, tensors, where) for v in obj]
    if isinstance(obj, dict):
        if set(obj) == {"__tensor__"}:
            if obj["__tensor__"] not in tensors:
                raise CheckpointError(f"{where}: training state refers to tensor {obj['__tensor__']!r}, which the file lacks")
            return tensors[obj["__tensor__"]]
        if set(obj) == {"__tuple__"} and isinstance(obj["__tuple__"], list):
            return tuple(_decode(v, tensors, where) for v in obj["__tuple__"])
        if set(obj) == {"__dict__"} and isinstance(obj["__dict__"], list) and all(
            isinstance(p, list) and len(p) == 2 and isinstance(p[0], (int, str)) for p in obj["__dict__"]
        ):
            return {k: _decode(v, tensors, where) for k, v in obj["__dict__"]}
        raise CheckpointError(f"{where}: unreadable training state (an object with keys {sorted(obj)[:5]})")
    return obj


# ---- readers ---------------------------------------------------------------------


def _read_safetensors(path: Path, device) -> tuple[dict, dict[str, torch.Tensor]]:
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as fh:
            metadata = fh.metadata() or {}
            tensors = {key: fh.get_tensor(key) for key in fh.keys()}
    except Exception as err:  # safetensors' own error type varies by version; any failure means "not readable"
        raise CheckpointError(f"{path}: not a readable checkpoint (safetensors: {_first_line(err)})") from None
    if HEADER_KEY not in metadata:
        raise CheckpointError(f"{path}: a safetensors file without neuro-erc's header; not a neuro-erc checkpoint")
    try:
        header = json.loads(metadata[HEADER_KEY])
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{path}: damaged header (not JSON: {err.msg})") from None
    return header, tensors


def _read_legacy(path: Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """A neuro-erc 0.1 ``torch.save`` file, read weights-only (no object is constructed)."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # UnpicklingError for refused objects; zip/EOF errors for damaged files
        raise CheckpointError(
            f"{path}: a torch pickle that does not load weights-only ({_first_line(err)}). It is refused because "
            "unpickling it could run code. A neuro-erc 0.1 best.pt loads this way; a 0.1 last.pt (it holds numpy "
            "RNG state) cannot be resumed: start the run again or pass its best.pt."
        ) from None
    if not isinstance(payload, dict) or not isinstance(payload.get("model"), dict):
        raise CheckpointError(f"{path}: a torch file that is not a neuro-erc checkpoint (no 'model' weights)")
    tensors = {f"model.{k}": v for k, v in payload["model"].items()}
    header = {k: payload.get(k) for k in ("config", "labels", "epoch", "best_f1", "best_epoch")}
    return {"format": 1, **header, "training_state": None}, tensors


def _from_header(header: Any, tensors: dict[str, torch.Tensor], path: Path) -> Checkpoint:
    if not isinstance(header, dict) or header.get("format") not in (1, FORMAT):
        version = header.get("format") if isinstance(header, dict) else None
        raise CheckpointError(f"{path}: checkpoint format {version!r}; this neuro-erc reads formats 1 and {FORMAT}")
    try:
        config = from_dict(TrainConfig, header.get("config"), where=f"{path}: config")
    except ConfigError as err:
        raise CheckpointError(str(err)) from None
    labels = header.get("labels")
    if not (isinstance(labels, list) and labels and all(isinstance(x, str) for x in labels)):
        raise CheckpointError(f"{path}: 'labels' must be a non-empty list of label names; got {labels!r}")
    if config.model.n_classes != len(labels):
        raise CheckpointError(f"{path}: {len(labels)} labels but the model has {config.model.n_classes} classes")
    for key in ("epoch", "best_epoch"):
        if not (isinstance(header.get(key), int) and not isinstance(header[key], bool) and header[key] >= -1):
            raise CheckpointError(f"{path}: {key!r} must be an integer >= -1; got {header.get(key)!r}")
    best_f1 = header.get("best_f1")
    if not (isinstance(best_f1, (int, float)) and not isinstance(best_f1, bool) and math.isfinite(best_f1)):
        raise CheckpointError(f"{path}: 'best_f1' must be a finite number; got {best_f1!r}")
    weights = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    if not weights:
        raise CheckpointError(f"{path}: the file holds no model weights")
    state = _decode(header.get("training_state"), tensors, path)
    return Checkpoint(config, labels, weights, header["epoch"], float(best_f1), header["best_epoch"], state, path)


def _first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0]
