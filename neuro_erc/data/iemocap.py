"""IEMOCAP from the community COSMIC-style text pickle: speakers, sentences, 6 emotion labels.

The pickle (read with :func:`neuro_erc.data.safe_pickle.load_pickle`) is a 6-list
``[speakers, labels, sentences, trainVid, testVid, validVid]``: three dicts keyed by
dialogue id (one entry per utterance: ``'M'``/``'F'``, a label id, the transcript) and three
lists of dialogue ids. Splits: ``train`` = trainVid, ``dev`` = validVid, ``test`` = testVid;
an empty split list is omitted (the shared copy holds Session 5 out, so its testVid is empty).
A dialogue listed twice, or in two splits, is refused; so are non-string sentences.

Label ids (:data:`IEMOCAP_LABELS`): hap 0, sad 1, neu 2, ang 3, exc 4, fru 5 — the order of
the COSMIC, DialogueRNN and MultiEMO pickles. Dialogues are in sorted-id order; no features
are attached here.
"""
from __future__ import annotations

from pathlib import Path

from .pickled import find_pickle, split_vids, utterances
from .safe_pickle import load_pickle
from .types import DataError, Dialogue, DialogueDataset, LabelSet

IEMOCAP_LABELS = LabelSet("iemocap", ("hap", "sad", "neu", "ang", "exc", "fru"))
_LAYOUT = "[speakers, labels, sentences, trainVid, testVid, validVid]"
_SPLITS = {"train": "trainVid", "dev": "validVid", "test": "testVid"}


def load_iemocap(path: str | Path) -> DialogueDataset:
    """Load the pickle at ``path`` (or the single ``.pkl`` in directory ``path``)."""
    path = Path(path)
    names = sorted(p.name for p in path.glob("*.pkl")) if path.is_dir() else []
    source = find_pickle(path, names, f"an IEMOCAP pickle {_LAYOUT}")
    content = load_pickle(source)
    if not isinstance(content, (list, tuple)) or len(content) != 6:
        raise DataError(f"{source}: expected a 6-entry list {_LAYOUT}, found a {type(content).__name__}"
                        + (f" of {len(content)} entries" if isinstance(content, (list, tuple)) else ""))
    speakers, labels, sentences, train, test, valid = content
    vids = split_vids({"trainVid": train, "validVid": valid, "testVid": test}, source)
    if not vids["trainVid"]:
        raise DataError(f"{source}: trainVid is empty; expected the training dialogues' ids")
    splits = {
        split: [Dialogue(str(vid), utterances(vid, source, IEMOCAP_LABELS, speakers, labels, sentences))
                for vid in vids[what]]
        for split, what in _SPLITS.items()
        if vids[what]
    }
    return DialogueDataset("iemocap", IEMOCAP_LABELS, splits)
