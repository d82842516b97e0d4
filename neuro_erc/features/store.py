"""An HDF5 store of per-utterance features: computed once, reused until their inputs change.

Layout (one float32 dataset per dialogue, rows in utterance order)::

    /<encoder key>/<dataset>/<split>/<dialogue id>     float32 [n_utterances, dim]
        attrs: input_hash   sha256 of the dialogue's inputs (texts, or audio file identities)
               sha256       sha256 of the block itself (:func:`block_checksum`)
    /<encoder key>
        attrs: encoder, version, dim, created (UTC, ISO 8601)

An encoder key is one path component (``text.minilm``, ``audio.ComParE_2016``); every name is
percent-escaped, so a dialogue id containing ``/`` stays one dataset.

Reuse rule. A stored dialogue is reused only when the encoder group's ``encoder`` and
``version`` equal the requested ones and its ``input_hash`` equals the hash of the current
inputs; anything else is a miss and gets recomputed. When an encoder's version changes, its
whole group is replaced at the next write, so stale rows never linger next to fresh ones.

Integrity. HDF5 checks none of its data: a damaged file can open and serve rows of zeros.
Every block carries a checksum written with it and verified whenever it is read; a block
that fails it, has none (a store from before checksums) or that h5py cannot read makes the
store refuse with a DataError naming the file and block. The store is a cache: deleting it
and re-running ``neuro-erc features`` re-creates it.

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
from ..io import atomic_path, remove_stale_temps

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


def block_checksum(array: np.ndarray) -> str:
    """sha256 of a block's shape and its float32 (little-endian) bytes: what is stored beside it."""
    digest = hashlib.sha256(repr(tuple(array.shape)).encode())
    digest.update(np.ascontiguousarray(array, dtype="<f4").tobytes())
    return digest.hexdigest()


CHECKSUM = "sha256"
"""The block attribute holding :func:`block_checksum`."""
_H5_ERRORS = (OSError, KeyError, RuntimeError, ValueError)
"""What h5py raises on a damaged file (KeyError and RuntimeError for broken object headers and B-trees)."""


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

    def _refuse(self, what: str) -> DataError:
        return DataError(
            f"feature store {self.path}: {what}; it is a cache: "
            "delete it and re-run `neuro-erc features` to re-create it"
        )

    @contextlib.contextmanager
    def _open(self) -> Iterator[h5py.File | None]:
        if not self.path.exists():
            yield None
            return
        try:
            f = h5py.File(self.path, "r")
        except OSError as err:
            raise self._refuse(f"not a readable HDF5 file ({err})") from None
        with f:
            yield f

    @contextlib.contextmanager
    def _reading(self, what: str) -> Iterator[None]:
        """Turn what h5py raises on a damaged file while reading ``what`` into a DataError naming both."""
        try:
            yield
        except _H5_ERRORS as err:
            raise self._refuse(f"cannot read {what} ({type(err).__name__}: {err})") from None

    def _verified(self, block: str, array: np.ndarray, checksum: object) -> np.ndarray:
        """``array`` if it matches the ``checksum`` stored with ``block``, else a DataError."""
        if checksum is None:
            raise self._refuse(f"block {block} has no {CHECKSUM} checksum (the store predates checksums)")
        if checksum != block_checksum(array):
            raise self._refuse(f"block {block} does not match its {CHECKSUM} checksum (the file is damaged)")
        return array

    def _load(self, f: h5py.File, block: str, expected_hash: str | None) -> np.ndarray | None:
        """The verified rows of ``block``; None when it is absent or holds other inputs (a miss)."""
        with self._reading(f"block {block}"):
            ds = f.get(block)
            if not isinstance(ds, h5py.Dataset):
                return None
            if expected_hash is not None and ds.attrs.get("input_hash") != expected_hash:
                return None
            array, checksum = ds[()], ds.attrs.get(CHECKSUM)
        return self._verified(block, array, checksum)

    def _group_attrs(self, f: h5py.File, encoder_key: str) -> dict | None:
        """The attributes of an encoder group, or None when the store has no such group."""
        with self._reading(f"group {encoder_key}"):
            group = f.get(_name(encoder_key))
            return None if group is None else dict(group.attrs)

    @staticmethod
    def _matches(attrs: Mapping, encoder: Encoder) -> bool:
        return attrs.get("encoder") == encoder.name and attrs.get("version") == encoder.version

    def read(self, encoder: Encoder, requests: Mapping[DialogueKey, str | None]) -> dict[DialogueKey, np.ndarray]:
        """The stored arrays for the requested dialogues whose input hash matches (``None``: any).

        Dialogues absent, stored under another input hash, or stored by another encoder
        version are left out: the caller computes them. A block that fails its checksum is
        a DataError (see the module docstring).
        """
        found: dict[DialogueKey, np.ndarray] = {}
        with self._open() as f:
            attrs = None if f is None else self._group_attrs(f, encoder.key)
            if attrs is None:
                return found
            if not self._matches(attrs, encoder):
                log.warning(
                    "%s: %s was written by %s %s; recomputing for %s %s",
                    self.path, encoder.key, attrs.get("encoder"), attrs.get("version"), encoder.name, encoder.version,
                )
                return found
            for key, expected in requests.items():
                array = self._load(f, _path(encoder, key), expected)
                if array is not None:
                    found[key] = array
        return found

    def provenance(self, encoder_key: str) -> dict | None:
        """The attributes of an encoder group (``encoder``, ``version``, ``dim``, ``created``), or None."""
        with self._open() as f:
            attrs = None if f is None else self._group_attrs(f, encoder_key)
        return None if attrs is None else {k: (v.item() if isinstance(v, np.generic) else v) for k, v in attrs.items()}

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
            remove_stale_temps(self.path.parent, self.path.name)  # a killed writer's: we hold the lock
            with atomic_path(self.path) as tmp, h5py.File(tmp, "w") as dst:
                attrs = self._copy_kept(dst, encoder, {_path(encoder, k) for k in arrays})
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
                    ds.attrs.update({"input_hash": digest, CHECKSUM: block_checksum(array)})

    def _copy_kept(self, dst: h5py.File, encoder: Encoder, replaced: set[str]) -> dict:
        """Copy the old store into ``dst`` minus the blocks this write replaces, each one verified.

        Returns the attributes of the encoder's old group when its rows were kept (same
        encoder and version), else ``{}``: a new version drops all of the old rows. Copying
        block by block through :meth:`_verified` keeps a damaged block from being carried
        into the new file unnoticed.
        """
        with self._open() as src:
            if src is None:
                return {}
            own = self._group_attrs(src, encoder.key)
            kept_own = own is not None and self._matches(own, encoder)
            with self._reading("its list of groups and blocks"):
                names: list[str] = []
                src.visit(names.append)
            for name in names:
                if name not in replaced and (kept_own or name.split("/")[0] != _name(encoder.key)):
                    self._copy_object(src, dst, name)
            return own if kept_own else {}

    def _copy_object(self, src: h5py.File, dst: h5py.File, name: str) -> None:
        """Copy object ``name`` to ``dst``: a block (verified) with its attributes, or a group's attributes."""
        with self._reading(f"object {name}"):
            obj = src[name]
            array = obj[()] if isinstance(obj, h5py.Dataset) else None
            attrs = dict(obj.attrs)
        if array is None:
            dst.require_group(name).attrs.update(attrs)
        else:
            dst.create_dataset(name, data=self._verified(name, array, attrs.get(CHECKSUM))).attrs.update(attrs)


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

