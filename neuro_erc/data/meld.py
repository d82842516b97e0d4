"""MELD from its official CSVs (Poria et al., ACL 2019): text, speakers and 7 emotion labels.

``<dir>/{train,dev,test}_sent_emo.csv``: each split whose file is present is loaded;
``train`` is required. Columns (official header): Sr No., Utterance, Speaker, Emotion,
Sentiment, Dialogue_ID, Utterance_ID, Season, Episode, StartTime, EndTime; the loader
needs Utterance, Speaker, Emotion, Dialogue_ID and Utterance_ID and ignores the rest.

Label order (:data:`MELD_LABELS`) is MultiEMO's and MMGCN's — neutral, surprise, fear,
sadness, joy, disgust, anger — so label ids agree with the MultiEMO/DialogueRNN feature
pickles of MELD (:mod:`neuro_erc.data.feature_pickles`).

Text is repaired with :func:`neuro_erc.data.textfix.repair_text` (cp1252 mojibake). A file
that is not UTF-8 text (gzip, UTF-16, NUL bytes), a malformed record, an id that is not plain
decimal digits, an unknown emotion or a file without rows is a DataError naming the file and line.
Utterances are ordered by Utterance_ID within a dialogue, dialogues by Dialogue_ID. No
features are attached here: :func:`neuro_erc.features.text.attach_text_features` does that.
"""
from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Iterator

from .textfix import repair_text
from .types import DataError, Dialogue, DialogueDataset, LabelSet, Utterance

MELD_LABELS = LabelSet("meld", ("neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger"))
SPLIT_FILES = {"train": "train_sent_emo.csv", "dev": "dev_sent_emo.csv", "test": "test_sent_emo.csv"}
REQUIRED_COLUMNS = ("Utterance", "Speaker", "Emotion", "Dialogue_ID", "Utterance_ID")
_ID = re.compile("[0-9]{1,18}")  # plain digits; 18 at most keeps int() far from its 4300-digit limit
_NOT_TEXT = {
    b"\x1f\x8b": "is gzip-compressed",
    b"PK\x03\x04": "is a zip archive",
    b"\xff\xfe": "starts with a UTF-16 byte-order mark",
    b"\xfe\xff": "starts with a UTF-16 byte-order mark",
}


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
    """Parse one MELD CSV into dialogues; a malformed row is a DataError naming its line.

    A file without a single utterance is refused too: training on an empty split would
    "succeed" and write a checkpoint that learnt nothing.
    """
    path = Path(path)
    reader = csv.reader(io.StringIO(_text(path), newline=""))
    records = _records(reader, path)
    header = [repair_text(name).strip() for name in next(records, [])]
    col = _columns(header, path)
    dialogues: dict[int, dict[int, Utterance]] = {}
    for row in records:
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
    if not dialogues:
        raise DataError(f"{path}: no utterances, only a header; expected at least one row")
    return [
        Dialogue(str(dialogue_id), [utterances[u] for u in sorted(utterances)])
        for dialogue_id, utterances in sorted(dialogues.items())
    ]


def _text(path: Path) -> str:
    """The file's text, decoded as UTF-8 (stray cp1252 bytes kept for :func:`repair_text`).

    A compressed, UTF-16 or binary file is refused here, by name: the csv module would fail
    on its first NUL byte with a message that names neither the file nor the cause.
    """
    raw = path.read_bytes()
    for magic, what in _NOT_TEXT.items():
        if raw.startswith(magic):
            raise DataError(f"{path}: the file {what}; expected a UTF-8 CSV (decompress or re-encode it)")
    nul = raw.find(b"\0")
    if nul >= 0:
        line = raw.count(b"\n", 0, nul) + 1
        raise DataError(f"{path}, line {line}: NUL byte; expected a UTF-8 text CSV (is the file binary or UTF-16?)")
    return raw.decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")


def _records(reader: Iterator[list[str]], path: Path) -> Iterator[list[str]]:
    """The reader's rows; a csv.Error (a field over the csv module's limit: an unclosed quote) names the line."""
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise DataError(
                f"{path}, line {start}: {err}; expected a well-formed CSV record (an unclosed quote?)"
            ) from None
        yield row


def _columns(header: list[str], path: Path) -> dict[str, int]:
    """The position of each required column, which must appear exactly once in ``header``."""
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {missing} in header {header}; expected at least {list(REQUIRED_COLUMNS)}"
        )
    repeated = [name for name in REQUIRED_COLUMNS if header.count(name) > 1]
    if repeated:
        raise DataError(f"{path}: column(s) {repeated} appear more than once in header {header}; expected each once")
    return {name: header.index(name) for name in REQUIRED_COLUMNS}


def _integer(value: str, column: str, where: str) -> int:
    """A non-negative id in plain decimal digits (``int`` alone would take ``1_0``, ``-1`` or ``٣``)."""
    if not _ID.fullmatch(value.strip()):
        raise DataError(f"{where}: {column} {value!r} is not a non-negative integer (expected up to 18 digits 0-9)")
    return int(value)
