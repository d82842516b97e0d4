"""MELD from its official CSVs (Poria et al., ACL 2019): text, speakers and 7 emotion labels.

``<dir>/{train,dev,test}_sent_emo.csv``: each split whose file is present is loaded;
``train`` is required. Columns (official header): Sr No., Utterance, Speaker, Emotion,
Sentiment, Dialogue_ID, Utterance_ID, Season, Episode, StartTime, EndTime; the loader
needs Utterance, Speaker, Emotion, Dialogue_ID and Utterance_ID and ignores the rest.

Label order (:data:`MELD_LABELS`) is MultiEMO's and MMGCN's — neutral, surprise, fear,
sadness, joy, disgust, anger — so label ids agree with the MultiEMO/DialogueRNN feature
pickles of MELD (:mod:`neuro_erc.data.feature_pickles`).

Text is repaired with :func:`neuro_erc.data.textfix.repair_text` (cp1252 mojibake).
Utterances are ordered by Utterance_ID within a dialogue, dialogues by Dialogue_ID. No
features are attached here: :func:`neuro_erc.features.text.attach_text_features` does that.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

from .textfix import repair_text
from .types import DataError, Dialogue, DialogueDataset, LabelSet, Utterance

MELD_LABELS = LabelSet("meld", ("neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger"))
SPLIT_FILES = {"train": "train_sent_emo.csv", "dev": "dev_sent_emo.csv", "test": "test_sent_emo.csv"}
REQUIRED_COLUMNS = ("Utterance", "Speaker", "Emotion", "Dialogue_ID", "Utterance_ID")


def load_meld(directory: str | Path) -> DialogueDataset:
    """Load every split present in ``directory`` (``train`` must be there)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory}: not a directory; expected the MELD folder holding {SPLIT_FILES['train']}")
    splits: dict[str, list[Dialogue]] = {}
    for split, filename in SPLIT_FILES.items():
        path = directory / filename
        if path.is_file():
            splits[split] = read_meld_csv(path)
        elif split == "train":
            raise DataError(f"{path}: no such file (MELD needs at least its train split)")
    return DialogueDataset("meld", MELD_LABELS, splits)


def read_meld_csv(path: str | Path) -> list[Dialogue]:
    """Parse one MELD CSV into dialogues; a malformed row is a DataError naming its line."""
    path = Path(path)
    text = path.read_bytes().decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [repair_text(name).strip() for name in next(reader, [])]
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {missing} in header {header}; expected at least {list(REQUIRED_COLUMNS)}"
        )
    col = {name: header.index(name) for name in REQUIRED_COLUMNS}
    dialogues: dict[int, dict[int, Utterance]] = {}
    for row in reader:
        where = f"{path}, line {reader.line_num}"
        if not any(field.strip() for field in row):
            continue
        if len(row) != len(header):
            raise DataError(f"{where}: {len(row)} fields, expected {len(header)} ({', '.join(header)})")
        dialogue_id = _integer(row[col["Dialogue_ID"]], "Dialogue_ID", where)
        utterance_id = _integer(row[col["Utterance_ID"]], "Utterance_ID", where)
        label = MELD_LABELS.index(row[col["Emotion"]].strip().lower(), where)
        utterances = dialogues.setdefault(dialogue_id, {})
        if utterance_id in utterances:
            raise DataError(f"{where}: duplicate Utterance_ID {utterance_id} in Dialogue_ID {dialogue_id}")
        utterances[utterance_id] = Utterance(
            speaker=repair_text(row[col["Speaker"]]).strip(),
            label=label,
            text=repair_text(row[col["Utterance"]]).strip(),
        )
    return [
        Dialogue(str(dialogue_id), [utterances[u] for u in sorted(utterances)])
        for dialogue_id, utterances in sorted(dialogues.items())
    ]


def _integer(value: str, column: str, where: str) -> int:
    try:
        return int(value.strip())
    except ValueError:
        raise DataError(f"{where}: {column} {value!r} is not an integer") from None
