"""Pieces shared by the loaders of the community pickles (COSMIC, MultiEMO, DialogueRNN/MMGCN).

Those pickles keep one dict per field (speakers, labels, sentences, features), each keyed
by dialogue id ("vid"), plus lists of the vids in each split. These helpers read one
dialogue's field with an error that names the file and the vid, and normalise speakers and
labels.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from .textfix import repair_text
from .types import DataError, LabelSet


def field(table: object, vid: object, what: str, source: Path) -> object:
    """``table[vid]``, or a DataError naming the file, the field and the missing vid."""
    if not isinstance(table, dict):
        raise DataError(f"{source}: {what} is a {type(table).__name__}, expected a dict keyed by dialogue id")
    if vid not in table:
        raise DataError(f"{source}: dialogue {vid!r} is listed in a split but absent from {what}")
    return table[vid]


def sorted_vids(vids: object, what: str, source: Path) -> list:
    """The vids of a split in a fixed order (numbers numerically, then strings), whatever container held them."""
    if not isinstance(vids, (list, tuple, set, frozenset, np.ndarray)):
        raise DataError(f"{source}: {what} is a {type(vids).__name__}, expected a list of dialogue ids")
    vids = [v.item() if isinstance(v, np.generic) else v for v in vids]
    return sorted(vids, key=lambda v: (0, v, "") if isinstance(v, int) else (1, 0, str(v)))


def speaker_name(value: object) -> str:
    """A speaker as a string: strings stay; an index k or a one-hot vector (MELD pickles) becomes ``speaker<k>``."""
    if isinstance(value, str):
        return repair_text(value)
    if isinstance(value, (int, np.integer)):
        return f"speaker{int(value)}"
    return f"speaker{int(np.argmax(np.asarray(value)))}"


def label_id(value: object, labels: LabelSet, where: str) -> int:
    """A label id in ``0..len(labels)-1`` from an integer (numpy integers included) or a label name."""
    if isinstance(value, str):
        return labels.index(value, where)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and 0 <= value < len(labels):
        return int(value)
    raise DataError(
        f"{where}: label {value!r} is neither an id in 0..{len(labels) - 1} nor one of {list(labels.labels)}"
    )


def sequence(value: object, n: int | None, what: str, where: str) -> list:
    """A per-utterance list, checked to have ``n`` entries when ``n`` is given."""
    if not isinstance(value, (list, tuple, np.ndarray)):
        raise DataError(f"{where}: {what} is a {type(value).__name__}, expected one entry per utterance")
    if n is not None and len(value) != n:
        raise DataError(f"{where}: {what} has {len(value)} entries, expected {n} (one per utterance)")
    return list(value)


def utterance_labels(table: object, vid: object, what: str, source: Path) -> list:
    """A dialogue's raw labels (its length is the dialogue's); an empty dialogue is a DataError."""
    labels = sequence(field(table, vid, what, source), None, what, f"{source}, dialogue {vid!r}")
    if not labels:
        raise DataError(f"{source}, dialogue {vid!r}: empty dialogue (no {what}); expected at least one utterance")
    return labels


def find_pickle(path: Path, names: Iterable[str], what: str) -> Path:
    """``path`` itself if it is a file, else the one file in directory ``path`` among ``names``."""
    if path.is_file():
        return path
    if not path.is_dir():
        raise DataError(f"{path}: no such file or directory; expected {what}")
    found = [path / name for name in names if (path / name).is_file()]
    if len(found) != 1:
        raise DataError(
            f"{path}: expected exactly one of {list(names)} ({what}), found {[p.name for p in found] or 'none'}"
        )
    return found[0]
