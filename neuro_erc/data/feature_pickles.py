"""Pre-extracted trimodal features from the MultiEMO/SpikEmo and DialogueRNN/MMGCN pickles.

Both layouts share the DialogueRNN tuple, whose entries are dicts keyed by dialogue id
("vid") except the two split lists::

    (videoIDs, videoSpeakers, videoLabels, videoText, videoAudio, videoVisual,
     videoSentence, trainVid, testVid[, videoSentiment])

* videoSpeakers[vid]: one speaker per utterance, a string (IEMOCAP ``'M'``/``'F'``) or a
  one-hot vector (MELD), which becomes ``speaker<k>``;
* videoLabels[vid]: label ids — IEMOCAP hap, sad, neu, ang, exc, fru (0–5); MELD
  neutral, surprise, fear, sadness, joy, disgust, anger (0–6);
* videoText/Audio/Visual[vid]: an array ``[n_utt, dim]`` (or a list of n_utt vectors);
* videoSentence[vid]: the transcripts;
* trainVid, testVid: vid lists. MELD files carry a 10th entry (sentiment labels), ignored;
  videoIDs is ignored.

**multiemo** (:func:`load_multiemo`) — the MultiEMO/SpikEmo ``Data/<DS>/`` directory:
``Speakers.pkl`` holds the tuple above, from which MultiEMO (and we) take speakers,
labels, sentences and splits but not features; the features come from
``TextFeatures.pkl``, ``AudioFeatures.pkl``, ``VisualFeatures.pkl``, each a dict vid →
``[n_utt, dim]`` (a list/tuple whose first entry is that dict is accepted too). Any
non-empty subset of the three files may be present. Published dims: text 768, audio 512,
visual 1000.

**dialoguernn** (:func:`load_dialoguernn`) — one file holding the tuple, features included:
DialogueRNN/MMGCN's ``IEMOCAP_features.pkl`` (9 entries; text 100, audio 100, visual 512)
or MMGCN's ``MELD_features_raw1.pkl`` (10 entries; text 600, audio 300, visual 342).

Dimensions are read from the data, never assumed; features must be finite real numbers,
at least one per utterance, and a dialogue listed twice or in both trainVid and testVid is
refused. MELD or IEMOCAP (``variant``) comes from the directory or file name unless given.
The files have no dev split: ``dev`` is held out of trainVid by :func:`hold_out_dev`;
``test`` is the file's testVid (omitted when empty).
Every pickle goes through :mod:`neuro_erc.data.safe_pickle`.
"""
from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from .iemocap import IEMOCAP_LABELS
from .meld import MELD_LABELS
from .pickled import field, find_pickle, split_vids, utterances
from .safe_pickle import load_pickle
from .types import DataError, Dialogue, DialogueDataset

VARIANT_LABELS = {"iemocap": IEMOCAP_LABELS, "meld": MELD_LABELS}
MULTIEMO_FILES = {"t": "TextFeatures.pkl", "a": "AudioFeatures.pkl", "v": "VisualFeatures.pkl"}
DIALOGUERNN_FILES = ("IEMOCAP_features.pkl", "MELD_features_raw1.pkl")
TUPLE_FIELDS = ("videoIDs", "videoSpeakers", "videoLabels", "videoText", "videoAudio", "videoVisual",
                "videoSentence", "trainVid", "testVid")
_TUPLE_MODALITIES = {"t": "videoText", "a": "videoAudio", "v": "videoVisual"}
DEV_FRACTION = 0.1

FeatureTable = tuple[object, Path]  # (dict vid -> [n_utt, dim], the file it came from)


def load_multiemo(directory: str | Path, variant: str | None = None,
                  dev_fraction: float = DEV_FRACTION) -> DialogueDataset:
    """Load a MultiEMO/SpikEmo ``Data/<DS>/`` directory (layout in the module docstring)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory}: not a directory; expected MultiEMO's Data/<DS>/ with Speakers.pkl")
    variant = detect_variant(directory, variant)
    speakers_file = directory / "Speakers.pkl"
    entries = _dialoguernn_tuple(load_pickle(speakers_file), speakers_file)
    features: dict[str, FeatureTable] = {}
    for m, name in MULTIEMO_FILES.items():
        if (directory / name).is_file():
            features[m] = (_feature_dict(load_pickle(directory / name), directory / name), directory / name)
    if not features:
        raise DataError(f"{directory}: none of {list(MULTIEMO_FILES.values())} found")
    return _build(f"multiemo-{variant}", variant, entries, speakers_file, features, dev_fraction)


def load_dialoguernn(path: str | Path, variant: str | None = None,
                     dev_fraction: float = DEV_FRACTION) -> DialogueDataset:
    """Load ``IEMOCAP_features.pkl`` or ``MELD_features_raw1.pkl`` (the file, or the folder holding it)."""
    source = find_pickle(Path(path), DIALOGUERNN_FILES, "a DialogueRNN/MMGCN features pickle")
    variant = detect_variant(source, variant)
    entries = _dialoguernn_tuple(load_pickle(source), source)
    features = {m: (entries[key], source) for m, key in _TUPLE_MODALITIES.items()}
    return _build(f"dialoguernn-{variant}", variant, entries, source, features, dev_fraction)


def detect_variant(path: Path, variant: str | None) -> str:
    """``variant`` if given, else ``meld`` or ``iemocap`` as named by the last component of ``path``."""
    if variant is None:
        found = [v for v in VARIANT_LABELS if v in path.resolve().name.lower()]
        if len(found) != 1:
            raise DataError(
                f"{path}: cannot tell MELD from IEMOCAP by the name; pass variant='meld' or 'iemocap' (--variant)"
            )
        variant = found[0]
    if variant not in VARIANT_LABELS:
        raise DataError(f"unknown variant {variant!r}; expected one of {list(VARIANT_LABELS)}")
    return variant


def hold_out_dev(train_vids: list, fraction: float) -> tuple[list, list]:
    """Split train vids into (train, dev): dev is the ``round(fraction·n)`` vids (at least one
    when n ≥ 2 and fraction > 0) with the smallest CRC-32 of ``str(vid)``.

    A hash rather than "the last 10 % by id" so that dev mixes sessions/episodes; a hash
    rather than a seeded shuffle so that a vid's side does not depend on the other vids or
    on a random-number library.
    """
    n_dev = min(max(round(fraction * len(train_vids)), 1 if fraction > 0 else 0), len(train_vids) - 1)
    if n_dev <= 0:
        return list(train_vids), []
    ranked = sorted(train_vids, key=lambda v: (zlib.crc32(str(v).encode("utf-8")), str(v)))
    dev = set(map(str, ranked[:n_dev]))
    return [v for v in train_vids if str(v) not in dev], [v for v in train_vids if str(v) in dev]


def _dialoguernn_tuple(content: object, source: Path) -> dict[str, object]:
    if not isinstance(content, (list, tuple)) or len(content) not in (9, 10):
        size = f" of {len(content)} entries" if isinstance(content, (list, tuple)) else ""
        raise DataError(
            f"{source}: found a {type(content).__name__}{size}; expected a 9- or 10-entry tuple "
            f"({', '.join(TUPLE_FIELDS)}[, videoSentiment])"
        )
    return dict(zip(TUPLE_FIELDS, content))


def _feature_dict(content: object, source: Path) -> object:
    """A modality file is a dict vid → array, or a list/tuple whose first entry is that dict."""
    if isinstance(content, (list, tuple)) and content and isinstance(content[0], dict):
        return content[0]
    if isinstance(content, dict):
        return content
    raise DataError(f"{source}: found a {type(content).__name__}; expected a dict dialogue id -> [n_utt, dim] array")


def _build(name: str, variant: str, entries: dict[str, object], meta_source: Path,
           features: dict[str, FeatureTable], dev_fraction: float) -> DialogueDataset:
    vids = split_vids({"trainVid": entries["trainVid"], "testVid": entries["testVid"]}, meta_source)
    train, dev = hold_out_dev(vids["trainVid"], dev_fraction)
    test = vids["testVid"]
    if not train:
        raise DataError(f"{meta_source}: trainVid is empty; expected the training dialogues' ids")
    dims: dict[str, tuple[int, object]] = {}
    splits = {
        split: [_dialogue(vid, variant, entries, meta_source, features, dims) for vid in vids]
        for split, vids in (("train", train), ("dev", dev), ("test", test))
        if vids
    }
    return DialogueDataset(name, VARIANT_LABELS[variant], splits)


def _dialogue(vid: object, variant: str, entries: dict[str, object], meta_source: Path,
              features: dict[str, FeatureTable], dims: dict[str, tuple[int, object]]) -> Dialogue:
    names = ("videoSpeakers", "videoLabels", "videoSentence")
    found = utterances(vid, meta_source, VARIANT_LABELS[variant], *(entries[name] for name in names), names=names)
    arrays = {m: _features(vid, m, table, source, len(found), dims) for m, (table, source) in features.items()}
    for i, utterance in enumerate(found):
        utterance.features = {m: x[i] for m, x in arrays.items()}
    return Dialogue(str(vid), found)


def _features(vid: object, m: str, table: object, source: Path, n: int,
              dims: dict[str, tuple[int, object]]) -> np.ndarray:
    """One dialogue's ``[n, dim]`` float32 features, checked for type, shape, finiteness and the common dim.

    Only real numbers are accepted: a complex array would lose its imaginary part in the
    cast, a string array would be parsed, and an object array hides what it holds.
    """
    where = f"{source}, dialogue {vid!r}, modality {m!r}"
    try:
        x = np.asarray(field(table, vid, f"the {m!r} features", source))
    except (TypeError, ValueError) as err:  # a ragged list of vectors
        raise DataError(f"{where}: not a numeric [n_utt, dim] array ({err})") from None
    if x.dtype.kind not in "biuf":
        raise DataError(f"{where}: features of dtype {x.dtype}, expected real numbers (float or integer)")
    if x.ndim != 2 or x.shape[0] != n or x.shape[1] == 0:
        raise DataError(f"{where}: features of shape {x.shape}, expected ({n}, dim) for its {n} utterances, dim ≥ 1")
    with np.errstate(over="ignore"):  # float64 beyond float32's range becomes inf, refused below
        x = np.ascontiguousarray(x, dtype=np.float32)
    bad = np.flatnonzero(~np.isfinite(x).all(axis=1))
    if bad.size:
        raise DataError(f"{where}, utterance {int(bad[0])}: NaN or inf feature values (or beyond float32's range)")
    dim, first = dims.setdefault(m, (x.shape[1], vid))
    if x.shape[1] != dim:
        raise DataError(f"{where}: feature dimension {x.shape[1]}, expected {dim} as in dialogue {first!r}")
    return x
