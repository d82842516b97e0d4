"""Fuzzed data files: every mutation of a small valid input loads (and is then sound) or raises DataError.

A seeded generator mutates a small valid MELD CSV, COSMIC-style IEMOCAP pickle and
DialogueRNN/MultiEMO feature pickles (built by the helpers of the loaders' own tests), at the
byte level (truncation, NUL bytes, flipped bytes, duplicated or dropped lines, UTF-16, gzip)
and structurally (dropped, renamed or swapped columns and fields, wrong types, negative ids,
empty containers, complex/zero-width/NaN arrays, duplicated and overlapping ids). Any
exception other than DataError is a bug: it would reach the user as a traceback. A mutant
that loads must still be a sound dataset (:func:`assert_sound`), so a wrong success fails too.
The mutations the fuzzing run found are also checked one by one to raise DataError.
"""
from __future__ import annotations

import csv
import gzip
import importlib.util
import io
import pickle
import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from neuro_erc.data import DataError, DialogueDataset
from neuro_erc.data.registry import load_dataset

SEED = 20240617
N_MUTANTS = 60  # per kind: MELD, IEMOCAP, feature pickles


def _sibling(name: str):
    """The test module ``name`` beside this one, imported by path (a site-packages ``tests`` shadows ours)."""
    spec = importlib.util.spec_from_file_location(f"fuzz_helpers_{name}", Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


meld_t = _sibling("test_data_meld")
iemocap_t = _sibling("test_data_iemocap")
pickles_t = _sibling("test_data_feature_pickles")


# --- byte-level mutations, shared by the three kinds -------------------------------------------------

def truncate(raw: bytes, rng: random.Random) -> bytes:
    return raw[: rng.randrange(len(raw))]


def insert_nul(raw: bytes, rng: random.Random) -> bytes:
    i = rng.randrange(len(raw))
    return raw[:i] + b"\0" + raw[i:]


def flip_bytes(raw: bytes, rng: random.Random) -> bytes:
    out = bytearray(raw)
    for _ in range(rng.randint(1, 4)):
        out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    return bytes(out)


def insert_byte(raw: bytes, rng: random.Random) -> bytes:
    i = rng.randrange(len(raw))
    return raw[:i] + rng.choice([b'"', b",", b"\r", b"\n", b"\xff", b"\x92", b"-"]) + raw[i:]


def duplicate_line(raw: bytes, rng: random.Random) -> bytes:
    lines = raw.split(b"\n")
    i = rng.randrange(len(lines))
    return b"\n".join(lines[: i + 1] + lines[i:])


def drop_line(raw: bytes, rng: random.Random) -> bytes:
    lines = raw.split(b"\n")
    del lines[rng.randrange(len(lines))]
    return b"\n".join(lines)


def utf16(raw: bytes, rng: random.Random) -> bytes:
    return raw.decode("latin-1").encode(rng.choice(["utf-16", "utf-16-le"]))


def gzipped(raw: bytes, rng: random.Random) -> bytes:
    return gzip.compress(raw)


BYTE_MUTATIONS = (truncate, insert_nul, flip_bytes, insert_byte, duplicate_line, drop_line, utf16, gzipped)


# --- MELD: structural mutations of the parsed table (header first) ------------------------------------

CELL_VALUES = ("", "-1", "1_0", "x", "\u0663", " 7 ", "1e3", "99999999999999999999", "HAPPY", "joy", 'a"b', "\r\n",
               "\ud800")


def without_column(table, j):
    return [row[:j] + row[j + 1:] for row in table]


def drop_column(table, rng):
    return without_column(table, rng.randrange(len(table[0])))


def rename_column(table, rng):
    table[0][rng.randrange(len(table[0]))] = rng.choice(["Feeling", "", "emotion", "Dialogue_ID", "Utterance"])
    return table


def swap_columns(table, rng):
    i, j = rng.sample(range(len(table[0])), 2)
    for row in table:
        row[i], row[j] = row[j], row[i]
    return table


def set_cell(table, rng):
    table[rng.randrange(1, len(table))][rng.randrange(len(table[0]))] = rng.choice(CELL_VALUES)
    return table


def duplicate_row(table, rng):
    return table + [list(rng.choice(table[1:]))]


def drop_field(table, rng):
    row = rng.choice(table[1:])
    del row[rng.randrange(len(row))]
    return table


def header_only(table, rng):
    return table[:1]


def overlong_field(table, rng):
    table[rng.randrange(1, len(table))][1] = "x" * 140_000
    return table


MELD_TABLE_MUTATIONS = (drop_column, rename_column, swap_columns, set_cell, duplicate_row, drop_field, header_only,
                        overlong_field)


def meld_table() -> list[list[str]]:
    return list(csv.reader(io.StringIO(meld_t.csv_bytes(meld_t.ROWS).decode("utf-8"), newline="")))


def meld_csv(table: list[list[str]]) -> bytes:
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\r\n").writerows(table)
    return out.getvalue().encode("utf-8", errors="surrogatepass")


def meld_mutant(rng: random.Random) -> tuple[str, bytes]:
    mutation = rng.choice(BYTE_MUTATIONS + MELD_TABLE_MUTATIONS)
    if mutation in BYTE_MUTATIONS:
        return mutation.__name__, mutation(meld_csv(meld_table()), rng)
    return mutation.__name__, meld_csv(mutation(meld_table(), rng))


def load_meld_bytes(directory: Path, raw: bytes) -> DialogueDataset:
    directory.mkdir(exist_ok=True)
    (directory / "train_sent_emo.csv").write_bytes(raw)
    return load_dataset("meld", directory, text_features=False)


# --- IEMOCAP and feature pickles: structural mutations of the loaded content --------------------------

ODD_VALUES = (None, [], {}, (), "", b"raw", -1, 1.5, True, 2 + 1j, float("nan"), np.array([]), np.array(3),
              ["a"], [[1], [2, 3]], "\ud800", np.int64(4), np.str_("F"), [0, 0], [0.0, 1.0])


def vid_lists(content) -> list[int]:
    """Positions of the split lists in a pickle's top-level list."""
    return [3, 4, 5] if len(content) == 6 else [7, 8]


def tables(content) -> list[int]:
    """Positions of the per-dialogue dicts."""
    return [i for i, entry in enumerate(content) if isinstance(entry, dict)]


def some_vid(content, rng):
    return rng.choice([v for i in vid_lists(content) for v in content[i]])


def odd_vid(content, rng):
    split = content[rng.choice(vid_lists(content))]
    split.insert(rng.randrange(len(split) + 1), rng.choice(ODD_VALUES))
    return content


def overlapping_vid(content, rng):
    a, b = rng.sample(vid_lists(content), 2)
    content[b].append(rng.choice(content[a]))
    return content


def duplicated_vid(content, rng):
    i = rng.choice(vid_lists(content))
    content[i] = content[i] * 2
    return content


def odd_utterance_value(content, rng):
    """One utterance's speaker, label, sentence (or id) replaced; feature arrays are :func:`odd_features`' job."""
    table = content[rng.choice([i for i in tables(content) if isinstance(next(iter(content[i].values())), list)])]
    entries = table[some_vid(content, rng)]
    entries[rng.randrange(len(entries))] = rng.choice(ODD_VALUES)
    return content


def odd_dialogue_value(content, rng):
    content[rng.choice(tables(content))][some_vid(content, rng)] = rng.choice(ODD_VALUES)
    return content


def shortened_dialogue(content, rng):
    table = content[rng.choice(tables(content))]
    vid = some_vid(content, rng)
    table[vid] = table[vid][:-1]
    return content


def missing_dialogue(content, rng):
    content[rng.choice(tables(content))].pop(some_vid(content, rng), None)
    return content


def odd_entry(content, rng):
    content[rng.randrange(len(content))] = rng.choice(ODD_VALUES)
    return content


def swapped_entries(content, rng):
    i, j = rng.sample(range(len(content)), 2)
    content[i], content[j] = content[j], content[i]
    return content


def resized_top_level(content, rng):
    return rng.choice([content[:-1], content + [[]], dict(enumerate(content)), tuple(content), content[0]])


def emptied(content, rng):
    i = rng.randrange(len(content))
    content[i] = type(content[i])()
    return content


PICKLE_MUTATIONS = (odd_vid, overlapping_vid, duplicated_vid, odd_utterance_value, odd_dialogue_value, shortened_dialogue,
                    missing_dialogue, odd_entry, swapped_entries, resized_top_level, emptied)


def odd_features(table: dict, rng: random.Random) -> None:
    """Replace one dialogue's [n, dim] features in ``table``: mostly wrongly, some with valid spellings."""
    vid = rng.choice(list(table))
    n, dim = table[vid].shape
    table[vid] = rng.choice([
        np.ones((n, dim)) + 1j, np.zeros((n, 0)), np.full((n, dim), np.nan), np.full((n, dim), -np.inf),
        np.full((n, dim), 1e300), np.full((n, dim), "1"), np.ones((n + 1, dim)), np.ones(dim), np.ones((n, dim, 1)),
        np.ones((n, dim + 1)), np.empty((0, dim)), np.ones((n, dim), dtype=object), [[1.0] * dim] * (n - 1) + [[1.0]],
        np.ones((n, dim), bool), np.arange(n * dim).reshape(n, dim), [list(np.ones(dim))] * n, None, "features",
    ])


def meld_features_mutant(rng: random.Random) -> tuple[str, object]:
    """A DialogueRNN MELD tuple with one dialogue's features replaced (3 times in 10) or one of PICKLE_MUTATIONS."""
    content = pickles_t.dialoguernn_tuple("meld", (3, 3, 3), pickles_t.MELD_TRAIN, pickles_t.MELD_TEST)
    if rng.random() < 0.3:
        odd_features(content[rng.choice([3, 4, 5])], rng)
        return "odd_features", content
    mutation = rng.choice(PICKLE_MUTATIONS)
    return mutation.__name__, mutation(content, rng)


def pickle_mutant(content: object, name: str, rng: random.Random) -> tuple[str, bytes]:
    """``content`` pickled, then (one time in four) mutated at the byte level too."""
    raw = pickle.dumps(content)
    if rng.random() < 0.25:
        mutation = rng.choice(BYTE_MUTATIONS)
        return f"{name}+{mutation.__name__}", mutation(raw, rng)
    return name, raw


def load_iemocap_bytes(directory: Path, raw: bytes) -> DialogueDataset:
    directory.mkdir(exist_ok=True)
    (directory / "iemocap.pkl").write_bytes(raw)
    return load_dataset("iemocap", directory / "iemocap.pkl", text_features=False)


def load_dialoguernn_bytes(directory: Path, raw: bytes) -> DialogueDataset:
    directory.mkdir(exist_ok=True)
    (directory / "MELD_features_raw1.pkl").write_bytes(raw)
    return load_dataset("dialoguernn", directory / "MELD_features_raw1.pkl")


def load_multiemo_bytes(directory: Path, raw: bytes) -> DialogueDataset:
    """A MultiEMO folder whose TextFeatures.pkl is ``raw`` (its other files valid)."""
    pickles_t.write_multiemo(directory, "meld", dims={"Text": 3, "Audio": 2})
    (directory / "TextFeatures.pkl").write_bytes(raw)
    return load_dataset("multiemo", directory, variant="meld")


def multiemo_mutant(rng: random.Random) -> tuple[str, object]:
    """A TextFeatures.pkl table (dict vid -> [n, 3]) with one dialogue's features or the container replaced."""
    table = multiemo_text_table()
    choice = rng.randrange(4)
    if choice == 0:
        return "multiemo_container", rng.choice([[table], list(table.values()), (table, None), None, {}])
    if choice == 1:
        del table[rng.choice(list(table))]
        return "multiemo_missing_dialogue", table
    odd_features(table, rng)
    return "multiemo_odd_features", table


def multiemo_text_table() -> dict:
    return pickles_t.dialoguernn_tuple("meld", (3,), pickles_t.MELD_TRAIN, pickles_t.MELD_TEST, seed=1)[3]


# --- the checks -------------------------------------------------------------------------------------

def assert_sound(dataset: DialogueDataset) -> None:
    """What every loaded dataset must satisfy (beyond ``validate``, which load_dataset ran)."""
    ids = [d.id for dialogues in dataset.splits.values() for d in dialogues]
    assert len(ids) == len(set(ids)), f"a dialogue id is in two splits or twice in one: {ids}"
    assert dataset.splits.get("train"), "no train dialogues"
    for dialogues in dataset.splits.values():
        for d in dialogues:
            for u in d.utterances:
                assert isinstance(u.text, str) and isinstance(u.speaker, str)
                (u.text + u.speaker).encode("utf-8")  # no lone surrogates
                assert 0 <= u.label < len(dataset.labels)
                assert all(x.dtype == np.float32 and x.size for x in u.features.values())


def run_mutants(tmp_path: Path, mutants) -> Counter:
    """Load each ``(name, load, raw)``; return outcome counts, failing on any exception but DataError."""
    outcomes: Counter = Counter()
    failures = []
    for i, (name, load, raw) in enumerate(mutants):
        try:
            assert_sound(load(tmp_path / f"case{i}", raw))
            outcomes["loaded"] += 1
        except DataError:
            outcomes["DataError"] += 1
        except Exception as err:  # anything else is the bug this test looks for
            failures.append(f"case {i} ({name}): {type(err).__name__}: {err}"[:300])
    assert not failures, "\n".join(failures)
    return outcomes


def test_mutated_meld_csvs_load_or_raise_data_error(tmp_path):
    rng = random.Random(SEED)
    mutants = [(name, load_meld_bytes, raw) for name, raw in (meld_mutant(rng) for _ in range(N_MUTANTS))]
    outcomes = run_mutants(tmp_path, mutants)
    assert sum(outcomes.values()) == N_MUTANTS and outcomes["DataError"] >= N_MUTANTS // 3 and outcomes["loaded"]


def test_mutated_iemocap_pickles_load_or_raise_data_error(tmp_path):
    rng = random.Random(SEED + 1)
    mutants = []
    for _ in range(N_MUTANTS):
        mutation = rng.choice(PICKLE_MUTATIONS)
        name, raw = pickle_mutant(mutation(iemocap_t.cosmic(test=("Ses05F_impro01",)), rng), mutation.__name__, rng)
        mutants.append((name, load_iemocap_bytes, raw))
    outcomes = run_mutants(tmp_path, mutants)
    assert sum(outcomes.values()) == N_MUTANTS and outcomes["DataError"] >= N_MUTANTS // 3 and outcomes["loaded"]


def test_mutated_feature_pickles_load_or_raise_data_error(tmp_path):
    rng = random.Random(SEED + 2)
    mutants = []
    for i in range(N_MUTANTS):
        multiemo = i % 4 == 0
        name, content = multiemo_mutant(rng) if multiemo else meld_features_mutant(rng)
        name, raw = pickle_mutant(content, name, rng)
        mutants.append((name, load_multiemo_bytes if multiemo else load_dialoguernn_bytes, raw))
    outcomes = run_mutants(tmp_path, mutants)
    assert sum(outcomes.values()) == N_MUTANTS and outcomes["DataError"] >= N_MUTANTS // 3 and outcomes["loaded"]


# --- the mutations the fuzzing run found: each must be refused, naming where and what ---------------------

def _meld(mutate):
    return lambda: meld_csv(mutate(meld_table()))


def _meld_rows(rows):
    return lambda: meld_t.csv_bytes(rows)


KNOWN_BAD_MELD = {  # name: (build the file's bytes, what the message must say after the file name)
    "NUL byte": (lambda: meld_csv(meld_table()).replace(b"Hi.", b"H\0i."), r", line 3: NUL byte"),
    "UTF-16": (lambda: meld_csv(meld_table()).decode("utf-8").encode("utf-16"), r": the file starts with a UTF-16"),
    "gzip": (lambda: gzip.compress(meld_csv(meld_table())), r": the file is gzip-compressed"),
    "field over 131072 characters": (_meld(lambda t: overlong_field(t, random.Random(0))),
                                     r", line \d: field larger than field limit \(131072\)"),
    "header only": (_meld(lambda t: t[:1]), r": no utterances, only a header"),
    "negative Dialogue_ID": (_meld_rows([(-1, 0, "Ross", "joy", "Hi")]), r", line 2: Dialogue_ID '-1' is not a non-neg"),
    "negative Utterance_ID": (_meld_rows([(0, -1, "Ross", "joy", "Hi")]), r", line 2: Utterance_ID '-1' is not a non-neg"),
    "underscore in an id": (_meld_rows([("1_0", 0, "Ross", "joy", "Hi")]), r", line 2: Dialogue_ID '1_0' is not a non-neg"),
    "label not in the label set": (_meld_rows([(0, 0, "Ross", "happy", "Hi")]), r", line 2: unknown label 'happy'"),
    "missing column": (_meld(lambda t: without_column(t, t[0].index("Emotion"))), r": missing column\(s\) \['Emotion'\]"),
}


@pytest.mark.parametrize("name", KNOWN_BAD_MELD)
def test_known_bad_meld_csvs_raise_data_error(tmp_path, name):
    build, message = KNOWN_BAD_MELD[name]
    with pytest.raises(DataError, match=r"train_sent_emo\.csv" + message):
        load_meld_bytes(tmp_path / "meld", build())


def _cosmic(mutate):
    def build():
        content = iemocap_t.cosmic(test=("Ses05F_impro01",))
        mutate(content)
        return content
    return build


FIRST = "Ses01F_impro01"
KNOWN_BAD_IEMOCAP = {
    "list as dialogue id": (_cosmic(lambda c: c[3].append([FIRST])), r": trainVid holds \['Ses01F_impro01'\], a list"),
    "empty speaker one-hot": (_cosmic(lambda c: c[0][FIRST].__setitem__(0, [])),
                              r", dialogue 'Ses01F_impro01', utterance 0: speaker \[\] is neither"),
    "None sentence": (_cosmic(lambda c: c[2][FIRST].__setitem__(0, None)),
                      r", dialogue 'Ses01F_impro01', utterance 0: sentences entry None is of type NoneType"),
    "bytes sentence": (_cosmic(lambda c: c[2][FIRST].__setitem__(0, b"Hi")),
                       r", dialogue 'Ses01F_impro01', utterance 0: sentences entry b'Hi' is of type bytes"),
    "int sentence": (_cosmic(lambda c: c[2][FIRST].__setitem__(0, 3)),
                     r", dialogue 'Ses01F_impro01', utterance 0: sentences entry 3 is of type int"),
    "lone surrogate": (_cosmic(lambda c: c[2][FIRST].__setitem__(0, "Hi \ud800")),
                       r", dialogue 'Ses01F_impro01', utterance 0: sentences entry .* lone surrogate U\+D800"),
    "train and valid": (_cosmic(lambda c: c[5].append(FIRST)), r": dialogue '\w+' is listed in both trainVid and validVid"),
    "train and test": (_cosmic(lambda c: c[4].append(FIRST)), r": dialogue '\w+' is listed in both trainVid and testVid"),
    "twice in train": (_cosmic(lambda c: c[3].append(FIRST)), r": dialogue 'Ses01F_impro01' is listed twice in trainVid"),
    "labels and sentences of different lengths": (_cosmic(lambda c: c[2][FIRST].pop()),
                                                  r", dialogue 'Ses01F_impro01': sentences has 1 entries, expected 2"),
    "label not in the label set": (_cosmic(lambda c: c[1][FIRST].__setitem__(0, 6)),
                                   r", dialogue 'Ses01F_impro01', utterance 0: label 6 is neither an id"),
    "not a list": (lambda: dict(enumerate(iemocap_t.cosmic())), r": expected a 6-entry list"),
}


@pytest.mark.parametrize("name", KNOWN_BAD_IEMOCAP)
def test_known_bad_iemocap_pickles_raise_data_error(tmp_path, name):
    build, message = KNOWN_BAD_IEMOCAP[name]
    with pytest.raises(DataError, match=r"iemocap\.pkl" + message):
        load_iemocap_bytes(tmp_path / "iemocap", pickle.dumps(build()))


def _tuple(mutate):
    def build():
        content = pickles_t.dialoguernn_tuple("meld", (3, 3, 3), pickles_t.MELD_TRAIN, pickles_t.MELD_TEST)
        mutate(content)
        return content
    return build


KNOWN_BAD_FEATURES = {
    "complex features": (_tuple(lambda c: c[3].__setitem__(10, c[3][10] + 1j)),
                         r", dialogue 10, modality 't': features of dtype complex64, expected real numbers"),
    "zero-width features": (_tuple(lambda c: c[4].__setitem__(10, np.zeros((2, 0), np.float32))),
                            r", dialogue 10, modality 'a': features of shape \(2, 0\)"),
    "NaN features": (_tuple(lambda c: c[5][10].__setitem__((1, 0), np.nan)),
                     r", dialogue 10, modality 'v', utterance 1: NaN or inf"),
    "empty speaker one-hot": (_tuple(lambda c: c[1][10].__setitem__(0, [])), r", dialogue 10, utterance 0: speaker \[\]"),
    "train and test": (_tuple(lambda c: c[8].append(10)), r": dialogue 10 is listed in both trainVid and testVid"),
    "twice in test": (_tuple(lambda c: c[8].append(1)), r": dialogue 1 is listed twice in testVid"),
    "not a tuple": (lambda: {"videoText": {}}, r": found a dict; expected a 9- or 10-entry tuple"),
}


@pytest.mark.parametrize("name", KNOWN_BAD_FEATURES)
def test_known_bad_feature_pickles_raise_data_error(tmp_path, name):
    build, message = KNOWN_BAD_FEATURES[name]
    with pytest.raises(DataError, match=r"MELD_features_raw1\.pkl" + message):
        load_dialoguernn_bytes(tmp_path / "features", pickle.dumps(build()))


def test_the_mutation_sources_are_valid(tmp_path):
    """Without mutation each source loads, so a refusal above is the mutation's doing."""
    assert_sound(load_meld_bytes(tmp_path / "m", meld_csv(meld_table())))
    assert_sound(load_iemocap_bytes(tmp_path / "i", pickle.dumps(_cosmic(lambda c: None)())))
    assert_sound(load_dialoguernn_bytes(tmp_path / "d", pickle.dumps(_tuple(lambda c: None)())))
    assert_sound(load_multiemo_bytes(tmp_path / "e", pickle.dumps(multiemo_text_table())))
