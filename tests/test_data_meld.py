"""MELD CSV loader: layout, ordering, mojibake repair, errors that name file and line, real counts."""
import gzip

import numpy as np
import pytest

from neuro_erc.data import DataError
from neuro_erc.data.meld import MELD_LABELS, load_meld, read_meld_csv
from neuro_erc.data.registry import load_dataset
from neuro_erc.data.textfix import repair_text

HEADER = ("Sr No.,Utterance,Speaker,Emotion,Sentiment,Dialogue_ID,Utterance_ID,Season,Episode,"
          "StartTime,EndTime")


def csv_bytes(rows, header=HEADER):
    """rows: (dialogue_id, utterance_id, speaker, emotion, utterance bytes-or-str) in file order."""
    lines = [header.encode()]
    for sr, (d, u, speaker, emotion, text) in enumerate(rows, 1):
        text = text if isinstance(text, bytes) else text.encode("utf-8")
        lines.append(b'%d,"%s",%s,%s,neutral,%s,%s,1,1,"00:00:01,000","00:00:02,000"'
                     % (sr, text, speaker.encode(), emotion.encode(), str(d).encode(), str(u).encode()))
    return b"\r\n".join(lines) + b"\r\n"


ROWS = [
    (1, 1, "Ross", "joy", "Second, said, with commas."),
    (0, 0, "Chandler", "neutral", "Hi."),
    (1, 0, "Monica", "anger", "First."),
    (0, 1, "The Interviewer", "surprise", "You must\u2019ve had your hands full."),
]


def write_meld(directory, splits=("train", "dev")):
    directory.mkdir(exist_ok=True)
    for split in splits:
        (directory / f"{split}_sent_emo.csv").write_bytes(csv_bytes(ROWS))
    return directory


def test_loads_present_splits_in_dialogue_and_utterance_order(tmp_path):
    ds = load_meld(write_meld(tmp_path / "meld"))
    assert set(ds.splits) == {"train", "dev"} and ds.labels is MELD_LABELS
    train = ds.split("train")
    assert [d.id for d in train] == ["0", "1"]
    assert [u.text for u in train[1].utterances] == ["First.", "Second, said, with commas."]
    assert [MELD_LABELS.labels[u.label] for u in train[0].utterances] == ["neutral", "surprise"]
    assert train[0].utterances[1].speaker == "The Interviewer" and train[0].utterances[1].features == {}
    ds.validate()


def test_test_split_loaded_when_present(tmp_path):
    assert set(load_meld(write_meld(tmp_path / "m", ("train", "test"))).splits) == {"train", "test"}


def test_missing_train_names_the_file(tmp_path):
    with pytest.raises(DataError, match="train_sent_emo.csv: no such file"):
        load_meld(write_meld(tmp_path / "m", ("dev",)))


@pytest.mark.parametrize("raw, expected", [
    (b"don\x92t \x93go\x94 caf\xe9", "don\u2019t \u201cgo\u201d caf\u00e9"),  # raw cp1252 bytes
    ("don\x92t\x85".encode("utf-8"), "don\u2019t\u2026"),  # C1 controls decoded from cp1252 as Latin-1
    ("don\u00e2\u20ac\u2122t caf\u00c3\u00a9 \u00e2\u20ac\u0153hi\u00e2\u20ac\x9d".encode("utf-8"),
     "don\u2019t caf\u00e9 \u201chi\u201d"),  # UTF-8 read as cp1252, written as UTF-8
    ("fianc\u00e9e\u2026 Caf\u00e9 \u2014 ok".encode("utf-8"), "fianc\u00e9e\u2026 Caf\u00e9 \u2014 ok"),  # clean stays
])
def test_repairs_cp1252_mojibake(tmp_path, raw, expected):
    path = tmp_path / "train_sent_emo.csv"
    path.write_bytes(csv_bytes([(0, 0, "Joey", "joy", raw)]))
    assert read_meld_csv(path)[0].utterances[0].text == expected


def test_repair_text_leaves_unrelated_accents_alone():
    assert repair_text("\u00c3 la carte, \u00e2ge") == "\u00c3 la carte, \u00e2ge"


@pytest.mark.parametrize("content, message", [
    (csv_bytes(ROWS, header=HEADER.replace("Emotion", "Feeling")), r"train_sent_emo.csv: missing column\(s\) \['Emotion'\]"),
    (csv_bytes(ROWS) + b"9,Short row,Ross,joy\r\n", r"train_sent_emo.csv, line 6: 4 fields, expected 11"),
    (csv_bytes(ROWS[:2] + [(2, "x", "Ross", "joy", "Hi")]), r"train_sent_emo.csv, line 4: Utterance_ID 'x' is not a non-negative integer"),
    (csv_bytes([("a", 0, "Ross", "joy", "Hi")]), r"train_sent_emo.csv, line 2: Dialogue_ID 'a' is not a non-negative integer"),
    (csv_bytes(ROWS[:1] + [(3, 0, "Ross", "happy", "Hi")]), r"train_sent_emo.csv, line 3: unknown label 'happy'"),
    (csv_bytes(ROWS + [(1, 1, "Ross", "joy", "again")]), r"train_sent_emo.csv, line 6: duplicate Utterance_ID 1"),
    (csv_bytes([(-1, 0, "Ross", "joy", "Hi")]), r"train_sent_emo.csv, line 2: Dialogue_ID '-1' is not a non-negative integer"),
    (csv_bytes([(0, -2, "Ross", "joy", "Hi")]), r"train_sent_emo.csv, line 2: Utterance_ID '-2' is not a non-negative integer"),
    (csv_bytes([("1_0", 0, "Ross", "joy", "Hi")]), r"train_sent_emo.csv, line 2: Dialogue_ID '1_0' is not a non-negative integer"),
    (csv_bytes([("\u0663", 0, "Ross", "joy", "Hi")]), r"train_sent_emo.csv, line 2: Dialogue_ID '\u0663' is not a non-negative"),
    (csv_bytes(ROWS, header=HEADER + ",Emotion"), r"train_sent_emo.csv: column\(s\) \['Emotion'\] appear more than once"),
])
def test_malformed_rows_name_file_and_line(tmp_path, content, message):
    (tmp_path / "train_sent_emo.csv").write_bytes(content)
    with pytest.raises(DataError, match=message):
        load_meld(tmp_path)


@pytest.mark.parametrize("content", [
    csv_bytes(ROWS[:1] + [(5, 0, "Ross", "joy", "x" * 140_000), (6, 0, "Ross", "joy", "Hi")]),
    csv_bytes(ROWS[:1]) + b'2,"never closed' + b"\r\nx" * 70_000,
], ids=["long field", "unclosed quote"])
def test_a_field_over_the_csv_limit_names_the_line_it_starts_on(tmp_path, content):
    (tmp_path / "train_sent_emo.csv").write_bytes(content)
    with pytest.raises(DataError, match=r"train_sent_emo.csv, line 3: field larger than field limit \(131072\).*unclosed quote"):
        load_meld(tmp_path)


@pytest.mark.parametrize("encode, message", [
    (lambda b: b[:60] + b"\0" + b[60:], r"train_sent_emo.csv, line 1: NUL byte; expected a UTF-8 text CSV"),
    (lambda b: b.replace(b"Hi.", b"H\0i."), r"train_sent_emo.csv, line 3: NUL byte"),
    (lambda b: b.decode("utf-8").encode("utf-16"), r"train_sent_emo.csv: the file starts with a UTF-16 byte-order mark"),
    (lambda b: b.decode("utf-8").encode("utf-16-le"), r"train_sent_emo.csv, line 1: NUL byte.*UTF-16"),
    (gzip.compress, r"train_sent_emo.csv: the file is gzip-compressed; expected a UTF-8 CSV"),
])
def test_files_that_are_not_utf8_text_are_refused_by_name(tmp_path, encode, message):
    (tmp_path / "train_sent_emo.csv").write_bytes(encode(csv_bytes(ROWS)))
    with pytest.raises(DataError, match=message):
        load_meld(tmp_path)


@pytest.mark.parametrize("split", ["train", "dev"])
def test_a_split_without_rows_is_refused(tmp_path, split):
    write_meld(tmp_path)
    (tmp_path / f"{split}_sent_emo.csv").write_bytes(HEADER.encode() + b"\r\n\r\n")
    with pytest.raises(DataError, match=rf"{split}_sent_emo.csv: no utterances, only a header"):
        load_meld(tmp_path)


def test_registry_attaches_text_features_only_when_asked(tmp_path, monkeypatch):
    import neuro_erc.features.text as text

    calls = []

    def fake_attach(dataset, store=None, model="minilm"):
        calls.append(store)
        for dialogues in dataset.splits.values():
            for d in dialogues:
                for u in d.utterances:
                    u.features["t"] = np.full(4, len(u.text), np.float32)
        return dataset

    monkeypatch.setattr(text, "attach_text_features", fake_attach)
    write_meld(tmp_path / "meld")
    plain = load_dataset("meld", tmp_path / "meld", text_features=False)
    assert calls == [] and plain.feature_dims() == {}
    monkeypatch.setenv("NEURO_ERC_DATA", str(tmp_path))  # default path: $NEURO_ERC_DATA/meld
    featured = load_dataset("meld", feature_store=tmp_path / "store")
    assert calls == [tmp_path / "store"] and featured.feature_dims() == {"t": 4}


@pytest.mark.realdata
def test_real_meld_counts(shared_data):
    ds = load_meld(shared_data / "meld")
    ds.validate()
    train, dev = ds.stats("train"), ds.stats("dev")
    assert (train["n_dialogues"], train["n_utterances"]) == (1038, 9989)
    assert (dev["n_dialogues"], dev["n_utterances"]) == (114, 1109)
    assert train["label_counts"] == {"neutral": 4710, "joy": 1743, "surprise": 1205, "anger": 1109,
                                     "sadness": 683, "disgust": 271, "fear": 268}
    texts = [u.text for d in ds.split("train") for u in d.utterances]
    assert not any(c in t for t in texts for c in "\x92\u00e2\ufffd")  # no mojibake left
