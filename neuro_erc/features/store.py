"""An HDF5 store of per-utterance features: computed once, reused until their inputs change.

Layout (one float32 dataset per dialogue, rows in utterance order)::

    /<encoder key>/<dataset>/<split>/<dialogue id>     float32 [n_utterances, dim]
        attrs: input_hash   sha256 of the dialogue's inputs (texts, or audio file identities)
    /<encoder key>
        attrs: encoder, version, dim, created (UTC, ISO 8601)

An encoder key is one path component (``text.minilm``, ``audio.ComParE_2016``); every name is
percent-escaped, so a dialogue id containing ``/`` stays one dataset.

Reuse rule. A stored dialogue is reused only when the encoder group's ``encoder`` and
``version`` equal the requested ones and its ``input_hash`` equals the hash of the current
inputs; anything else is a miss and gets recomputed. When an encoder's version changes, its
whole group is replaced at the next write, so stale rows never linger next to fresh ones.

Writes are atomic. A write builds a new file beside the store (same directory, hence same
filesystem), copies over every object it keeps, adds the new rows, fsyncs, and
``os.replace``-s it over the store: a crash at any point leaves the previous store intact
(readers never see a half-written file). Rebuilding rather than editing in place also keeps
the file compact, since HDF5 does not reclaim deleted space. A lock file serialises
concurrent writers, so two runs updating different encoders do not drop each other's rows.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Mapping, NamedTuple, Sequence
from urllib.parse import quote

import h5py
import numpy as np

from ..data.types import DataError
from ..io import atomic_path

log = logging.getLogger(__name__)


def default_store_path() -> Path:
    """``$NEURO_ERC_CACHE/features.h5`` if that variable is set, else ``~/.cache/neuro-erc/features.h5``."""
    root = os.environ.get("NEURO_ERC_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "neuro-erc") / "features.h5"


class DialogueKey(NamedTuple):
    """Where one dialogue's features live in the store."""

    dataset: str
    split: str
    dialogue: str

    def __str__(self) -> str:
        return f"dataset {self.dataset!r}, split {self.split!r}, dialogue {self.dialogue!r}"


@dataclass(frozen=True)
class Encoder:
    """Provenance of a feature extractor: rows are reused only under equal ``name`` and ``version``.

    ``key`` names its group in the store (one path component); ``version`` should pin what
    changes the numbers: package versions, and a fingerprint of local model files.
    """

    key: str
    name: str
    version: str


def input_hash(inputs: Sequence[str]) -> str:
    """sha256 of a dialogue's inputs in order (JSON-encoded, so boundaries are unambiguous)."""
    return hashlib.sha256(json.dumps(list(inputs), ensure_ascii=False).encode("utf-8")).hexdigest()


def _name(part: str) -> str:
    return quote(part, safe="")


def _path(encoder: Encoder, key: DialogueKey) -> str:
    return "/".join(_name(p) for p in (encoder.key, *key))


class FeatureStore:
    """The HDF5 file at ``path`` (created on first write, with its parent directories)."""

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path).expanduser() if path is not None else default_store_path()

    def __repr__(self) -> str:
        return f"FeatureStore({str(self.path)!r})"

    @contextlib.contextmanager
    def _open(self) -> Iterator[h5py.File | None]:
        if not self.path.exists():
            yield None
            return
        try:
            f = h5py.File(self.path, "r")
        except OSError as err:
            raise DataError(
                f"feature store {self.path} is not a readable HDF5 file ({err}); delete it to rebuild"
            ) from None
        with f:
            yield f

    @staticmethod
    def _matches(group: h5py.Group, encoder: Encoder) -> bool:
        return group.attrs.get("encoder") == encoder.name and group.attrs.get("version") == encoder.version

    def read(self, encoder: Encoder, requests: Mapping[DialogueKey, str | None]) -> dict[DialogueKey, np.ndarray]:
        """The stored arrays for the requested dialogues whose input hash matches (``None``: any).

        Dialogues absent, stored under another input hash, or stored by another encoder
        version are left out: the caller computes them.
        """
        found: dict[DialogueKey, np.ndarray] = {}
        with self._open() as f:
            if f is None or _name(encoder.key) not in f:
                return found
            group = f[_name(encoder.key)]
            if not self._matches(group, encoder):
                log.warning(
                    "%s: %s was written by %s %s; recomputing for %s %s",
                    self.path, encoder.key, group.attrs.get("encoder"), group.attrs.get("version"),
                    encoder.name, encoder.version,
                )
                return found
            for key, expected in requests.items():
                ds = f.get(_path(encoder, key))
                if isinstance(ds, h5py.Dataset) and (expected is None or ds.attrs.get("input_hash") == expected):
                    found[key] = ds[()]
        return found

    def provenance(self, encoder_key: str) -> dict | None:
        """The attributes of an encoder group (``encoder``, ``version``, ``dim``, ``created``), or None."""
        with self._open() as f:
            if f is None or _name(encoder_key) not in f:
                return None
            return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in f[_name(encoder_key)].attrs.items()}

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def write(self, encoder: Encoder, entries: Mapping[DialogueKey, tuple[str, np.ndarray]]) -> None:
        """Store ``entries`` (dialogue → (input hash, [n_utterances, dim] array)) atomically.

        The new rows must have the dimension of the rows already stored by the same encoder
        version; a mismatch raises DataError and leaves the store unchanged.
        """
        arrays = {k: (h, np.asarray(a, dtype=np.float32)) for k, (h, a) in entries.items()}
        if not arrays:
            return
        dims = {a.shape[1] if a.ndim == 2 else -1 for _, a in arrays.values()}
        if len(dims) > 1 or -1 in dims:
            raise DataError(
                f"{self.path}: features for {encoder.key} must be [n_utterances, dim] arrays of one dim"
            )
        dim = dims.pop()
        with self._lock():
            for stale in self.path.parent.glob(f".{self.path.name}.*.tmp"):
                stale.unlink()  # left by a writer that was killed: we hold the lock, so nobody owns it
            with atomic_path(self.path) as tmp, h5py.File(tmp, "w") as dst:
                attrs = self._copy_kept(dst, encoder, set(arrays))
                if attrs.get("dim", dim) != dim:
                    raise DataError(
                        f"{self.path}: {encoder.key} holds {attrs['dim']}-d features from the same "
                        f"encoder version, but the new ones are {dim}-d"
                    )
                created = attrs.get("created", _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"))
                group = dst.require_group(_name(encoder.key))
                group.attrs.update(encoder=encoder.name, version=encoder.version, dim=dim, created=created)
                for key, (digest, array) in arrays.items():
                    ds = dst.create_dataset(_path(encoder, key), data=array)
                    ds.attrs["input_hash"] = digest

    def _copy_kept(self, dst: h5py.File, encoder: Encoder, replaced: set[DialogueKey]) -> dict:
        """Copy the old store into ``dst`` minus what this write replaces.

        Returns the attributes of the encoder's old group when its rows were kept (same
        encoder and version), else ``{}``: a new version drops all of the old rows.
        """
        with self._open() as src:
            if src is None:
                return {}
            for name in src:
                if name != _name(encoder.key):
                    src.copy(src[name], dst, name)
            if _name(encoder.key) not in src or not self._matches(src[_name(encoder.key)], encoder):
                return {}
            old = src[_name(encoder.key)]
            skip = {_path(encoder, k) for k in replaced}
            kept: list[str] = []
            old.visititems(lambda rel, obj: kept.append(rel) if isinstance(obj, h5py.Dataset) else None)
            for rel in kept:
                full = f"{_name(encoder.key)}/{rel}"
                if full not in skip:
                    parent, _, leaf = full.rpartition("/")
                    src.copy(src[full], dst.require_group(parent), leaf)
            return dict(old.attrs)


@dataclass
class FeatureResult:
    """Features for a set of dialogues, and how they were obtained."""

    encoder: Encoder
    store: Path
    features: dict[DialogueKey, np.ndarray]
    n_computed_dialogues: int
    n_computed_utterances: int
    seconds: float

    @property
    def dim(self) -> int:
        return next(iter(self.features.values())).shape[1] if self.features else 0

    @property
    def cached(self) -> bool:
        """True when every dialogue came from the store (no extractor was loaded)."""
        return self.n_computed_dialogues == 0

    def summary(self) -> dict:
        """A JSON-ready summary (what ``neuro-erc features`` prints)."""
        return {
            "encoder": self.encoder.name,
            "version": self.encoder.version,
            "key": self.encoder.key,
            "store": str(self.store),
            "n_dialogues": len(self.features),
            "n_utterances": sum(len(a) for a in self.features.values()),
            "dim": self.dim,
            "n_computed_dialogues": self.n_computed_dialogues,
            "n_computed_utterances": self.n_computed_utterances,
            "cached": self.cached,
            "seconds": round(self.seconds, 3),
        }


Compute = Callable[[dict[DialogueKey, Sequence[str]]], dict[DialogueKey, np.ndarray]]


def fetch_or_compute(
    store: FeatureStore, encoder: Encoder, inputs: Mapping[DialogueKey, Sequence[str]], compute: Compute
) -> FeatureResult:
    """Read every dialogue whose inputs are unchanged; ``compute`` only the rest, then store them.

    ``inputs`` maps each dialogue to its per-utterance inputs (texts, or file identities);
    ``compute`` gets the missing ones and must return one [n_utterances, dim] finite array each.
    """
    start = time.perf_counter()
    hashes = {k: input_hash(v) for k, v in inputs.items()}
    features = store.read(encoder, hashes)
    missing = {k: inputs[k] for k in inputs if k not in features}
    if missing:
        computed = compute(missing)
        for k, v in missing.items():
            array = computed.get(k)
            if array is None or array.ndim != 2 or len(array) != len(v) or not np.all(np.isfinite(array)):
                raise DataError(
                    f"{encoder.key}: {k}: expected {len(v)} finite feature rows, got "
                    + ("none" if array is None else f"shape {array.shape}")
                )
        store.write(encoder, {k: (hashes[k], computed[k]) for k in missing})
        features.update({k: computed[k].astype(np.float32, copy=False) for k in missing})
    return FeatureResult(
        encoder=encoder,
        store=store.path,
        features={k: features[k] for k in inputs},
        n_computed_dialogues=len(missing),
        n_computed_utterances=sum(len(v) for v in missing.values()),
        seconds=time.perf_counter() - start,
    )

