"""IEMOCAP from the community COSMIC-style text pickle: speakers, sentences, 6 emotion labels.

The pickle (read with :func:`neuro_erc.data.safe_pickle.load_pickle`) is a 6-list
``[speakers, labels, sentences, trainVid, testVid, validVid]``: three dicts keyed by
dialogue id (one entry per utterance: ``'M'``/``'F'``, a label id, the transcript) and three
lists of dialogue ids. Splits: ``train`` = trainVid, ``dev`` = validVid, ``test`` = testVid;
an empty split list is omitted (the shared copy holds Session 5 out, so its testVid is empty).

Label ids (:data:`IEMOCAP_LABELS`): hap 0, sad 1, neu 2, ang 3, exc 4, fru 5 — the order of
the COSMIC, DialogueRNN and MultiEMO pickles. Dialogues are in sorted-id order; no features
are attached here.
"""
from __future__ import annotations

from pathlib import Path

from .pickled import field, find_pickle, label_id, sequence, sorted_vids, speaker_name, utterance_labels
from .safe_pickle import load_pickle
from .textfix import repair_text
from .types import DataError, Dialogue, DialogueDataset, LabelSet, Utterance

IEMOCAP_LABELS = LabelSet("iemocap", ("hap", "sad", "neu", "ang", "exc", "fru"))
_LAYOUT = "[speakers, labels, sentences, trainVid, testVid, validVid]"


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
    splits: dict[str, list[Dialogue]] = {}
    for split, vids, what in (("train", train, "trainVid"), ("dev", valid, "validVid"), ("test", test, "testVid")):
        vids = sorted_vids(vids, what, source)
        if vids:
            splits[split] = [_dialogue(vid, speakers, labels, sentences, source) for vid in vids]
    if "train" not in splits:
        raise DataError(f"{source}: trainVid is empty; expected the training dialogues' ids")
    return DialogueDataset("iemocap", IEMOCAP_LABELS, splits)


def _dialogue(vid: object, speakers: object, labels: object, sentences: object, source: Path) -> Dialogue:
    where = f"{source}, dialogue {vid!r}"
    label_list = utterance_labels(labels, vid, "labels", source)
    n = len(label_list)
    speaker_list = sequence(field(speakers, vid, "speakers", source), n, "speakers", where)
    sentence_list = sequence(field(sentences, vid, "sentences", source), n, "sentences", where)
    return Dialogue(
        str(vid),
        [
            Utterance(speaker=speaker_name(s), label=label_id(y, IEMOCAP_LABELS, f"{where}, utterance {i}"),
                      text=repair_text(str(t)))
            for i, (s, y, t) in enumerate(zip(speaker_list, label_list, sentence_list))
        ],
    )
