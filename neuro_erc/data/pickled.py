"""Pieces shared by the loaders of the community pickles (COSMIC, MultiEMO, DialogueRNN/MMGCN).

Those pickles keep one dict per field (speakers, labels, sentences, features), each keyed
by dialogue id ("vid"), plus lists of the vids in each split. These helpers read the split
lists and one dialogue's fields with errors that name the file, the dialogue (and the
utterance) and what was expected, and normalise speakers, labels and texts.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from .textfix import repair_text
from .types import DataError, LabelSet, Utterance

_SURROGATE = re.compile("[\ud800-\udfff]")


def field(table: object, vid: object, what: str, source: Path) -> object:
    """``table[vid]``, or a DataError naming the file, the field and the missing vid."""
    if not isinstance(table, dict):
        raise DataError(f"{source}: {what} is a {type(table).__name__}, expected a dict keyed by dialogue id")
    if vid not in table:
        raise DataError(f"{source}: dialogue {vid!r} is listed in a split but absent from {what}")
    return table[vid]


def split_vids(splits: Mapping[str, object], source: Path) -> dict[str, list]:
    """The vids of each split list (named by its field, e.g. ``trainVid``), each in :func:`_sorted_vids` order.

    A vid listed twice, in one split or in two (a train/test leak), is a DataError. Vids are
    compared as strings, since that is what :attr:`Dialogue.id` keeps.
    """
    seen: dict[str, str] = {}
    found: dict[str, list] = {}
    for what, vids in splits.items():
        found[what] = _sorted_vids(vids, what, source)
        for vid in found[what]:
            first = seen.get(str(vid))
            if first is not None:
                twice = f"twice in {what}" if first == what else f"in both {first} and {what}"
                raise DataError(
                    f"{source}: dialogue {vid!r} is listed {twice}; expected each dialogue once, in one split"
                )
            seen[str(vid)] = what
    return found


def _sorted_vids(vids: object, what: str, source: Path) -> list:
    """The vids of a split in a fixed order (numbers numerically, then strings), whatever container held them."""
    if not isinstance(vids, (list, tuple, set, frozenset, np.ndarray)) or _scalar_array(vids):
        raise DataError(f"{source}: {what} is a {type(vids).__name__}, expected a list of dialogue ids")
    vids = [_vid(v, what, source) for v in vids]
    return sorted(vids, key=lambda v: (0, v, "") if isinstance(v, int) else (1, 0, v))


def _vid(value: object, what: str, source: Path) -> str | int:
    """A dialogue id: a string or an integer (numpy scalars unwrapped); anything else is a DataError."""
    value = value.item() if isinstance(value, np.generic) else value
    if isinstance(value, str):
        return _valid_unicode(value, f"dialogue id in {what}", str(source))
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise DataError(f"{source}: {what} holds {value!r}, a {type(value).__name__}; expected dialogue ids "
                    "(strings or integers)")


def utterances(vid: object, source: Path, label_set: LabelSet, speakers: object, labels: object, sentences: object,
               names: tuple[str, str, str] = ("speakers", "labels", "sentences")) -> list[Utterance]:
    """One dialogue's utterances (without features) from the speakers, labels and sentences dicts.

    ``names`` are those dicts' names in the file (for messages). The labels give the
    dialogue's length, which its speakers and sentences must have.
    """
    where = f"{source}, dialogue {vid!r}"
    label_list = utterance_labels(labels, vid, names[1], source)
    n = len(label_list)
    speaker_list = sequence(field(speakers, vid, names[0], source), n, names[0], where)
    sentence_list = sequence(field(sentences, vid, names[2], source), n, names[2], where)
    found = []
    for i, (speaker, label, sentence) in enumerate(zip(speaker_list, label_list, sentence_list)):
        at = f"{where}, utterance {i}"
        found.append(Utterance(speaker=speaker_name(speaker, at), label=label_id(label, label_set, at),
                               text=text(sentence, names[2], at)))
    return found


def text(value: object, what: str, where: str) -> str:
    """A transcript or name: a string, mojibake repaired; not a string, or not valid Unicode, is a DataError.

    A lone surrogate (U+D800–U+DFFF) cannot be encoded as UTF-8, so the text encoder and
    every file we write would fail on it far from here.
    """
    if not isinstance(value, str):
        raise DataError(f"{where}: {what} entry {value!r} is of type {type(value).__name__}, expected a string")
    return _valid_unicode(repair_text(value), f"{what} entry", where)


def _valid_unicode(value: str, what: str, where: str) -> str:
    """``value``, or a DataError if it holds a lone surrogate (see :func:`text`)."""
    bad = _SURROGATE.search(value)
    if bad:
        raise DataError(f"{where}: {what} {value!r} holds a lone surrogate U+{ord(bad.group()):04X} at "
                        f"position {bad.start()}; expected valid Unicode text")
    return value


def speaker_name(value: object, where: str) -> str:
    """A speaker as a string: strings stay (checked by :func:`text`); an index k ≥ 0 or a one-hot
    vector (MELD pickles) becomes ``speaker<k>``."""
    if isinstance(value, str):
        return text(value, "speaker", where)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 0:
        return f"speaker{int(value)}"
    index = _one_hot_index(value)
    if index is None:
        raise DataError(f"{where}: speaker {value!r} is neither a name, an index ≥ 0 nor a one-hot vector")
    return f"speaker{index}"


def _one_hot_index(value: object) -> int | None:
    """The position of the single largest entry of a non-empty finite real vector, else None."""
    try:
        x = np.asarray(value)
    except (TypeError, ValueError):  # a ragged nested list
        return None
    if x.ndim != 1 or not x.size or x.dtype.kind not in "biuf" or not np.isfinite(x).all():
        return None
    top = np.flatnonzero(x == x.max())
    return int(top[0]) if top.size == 1 else None


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
    if not isinstance(value, (list, tuple, np.ndarray)) or _scalar_array(value):
        raise DataError(f"{where}: {what} is a {type(value).__name__}, expected one entry per utterance")
    if n is not None and len(value) != n:
        raise DataError(f"{where}: {what} has {len(value)} entries, expected {n} (one per utterance)")
    return list(value)


def _scalar_array(value: object) -> bool:
    """A 0-d numpy array: an ndarray that cannot be iterated."""
    return isinstance(value, np.ndarray) and value.ndim == 0


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
