"""MultiEMO/SpikEmo and DialogueRNN/MMGCN feature pickles: layouts, dev hold-out, errors."""
import json
import os
import pickle

import numpy as np
import pytest

from neuro_erc.cli import main
from neuro_erc.data import DataError
from neuro_erc.data.feature_pickles import hold_out_dev, load_dialoguernn, load_multiemo
from neuro_erc.data.registry import load_dataset

MELD_TRAIN, MELD_TEST = list(range(10, 16)), [1, 2]
IEMOCAP_TRAIN, IEMOCAP_TEST = ["Ses01F_impro01", "Ses01M_script01", "Ses02F_impro03"], ["Ses05F_impro01"]


def dialoguernn_tuple(variant, dims, train, test, seed=0):
    """(videoIDs, videoSpeakers, videoLabels, videoText, videoAudio, videoVisual, videoSentence,
    trainVid, testVid[, videoSentiment for MELD]) with random features of the given dims."""
    rng = np.random.default_rng(seed)
    vids = [*train, *test]
    n = {v: 2 + i % 3 for i, v in enumerate(vids)}
    if variant == "meld":
        speakers = {v: [np.eye(9)[j % 3].tolist() for j in range(n[v])] for v in vids}
        labels = {v: [(i + j) % 7 for j in range(n[v])] for i, v in enumerate(vids)}
    else:
        speakers = {v: ["M", "F"] * 2 for v in vids}
        speakers = {v: speakers[v][: n[v]] for v in vids}
        labels = {v: [(i + j) % 6 for j in range(n[v])] for i, v in enumerate(vids)}
    features = [{v: rng.standard_normal((n[v], d)).astype(np.float32) for v in vids} for d in dims]
    sentences = {v: [f"{v} says {j}" for j in range(n[v])] for v in vids}
    ids = {v: [f"{v}_{j}" for j in range(n[v])] for v in vids}
    entries = [ids, speakers, labels, *features, sentences, list(train), list(test)]
    if variant == "meld":
        entries.append({v: [0] * n[v] for v in vids})
    return entries


def dump(path, content):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(content))
    return path


def write_multiemo(directory, variant, dims=None, train=None, test=None, wrapped=False):
    """Data/<DS>/: Speakers.pkl (the tuple, with 5-d dummy features MultiEMO ignores) and
    {Text,Audio,Visual}Features.pkl, each a dict vid -> [n_utt, dim] (or [dict] when wrapped)."""
    dims = dims or {"Text": 768, "Audio": 512, "Visual": 1000}
    train = train or (MELD_TRAIN if variant == "meld" else IEMOCAP_TRAIN)
    test = test or (MELD_TEST if variant == "meld" else IEMOCAP_TEST)
    entries = dialoguernn_tuple(variant, (5, 5, 5), train, test)
    dump(directory / "Speakers.pkl", entries)
    for i, (name, d) in enumerate(dims.items()):
        table = dialoguernn_tuple(variant, (d,), train, test, seed=i + 1)[3]
        dump(directory / f"{name}Features.pkl", [table] if wrapped else table)
    return directory


@pytest.mark.parametrize("wrapped", [False, True])
def test_multiemo_meld_published_dims(tmp_path, wrapped):
    ds = load_multiemo(write_multiemo(tmp_path / "Data" / "MELD", "meld", wrapped=wrapped))
    assert ds.name == "multiemo-meld" and len(ds.labels) == 7
    assert ds.feature_dims() == {"t": 768, "a": 512, "v": 1000}
    assert {s: len(d) for s, d in ds.splits.items()} == {"train": 5, "dev": 1, "test": 2}
    assert sorted(int(d.id) for s in ("train", "dev") for d in ds.split(s)) == MELD_TRAIN
    first = ds.split("test")[0]
    assert first.id == "1" and [u.speaker for u in first.utterances] == ["speaker0", "speaker1"]
    assert first.utterances[0].text == "1 says 0" and first.utterances[0].features["t"].dtype == np.float32
    ds.validate()


def test_multiemo_iemocap_with_text_only(tmp_path):
    ds = load_dataset("multiemo", write_multiemo(tmp_path / "IEMOCAP", "iemocap", dims={"Text": 12}))
    assert ds.name == "multiemo-iemocap" and len(ds.labels) == 6
    assert ds.feature_dims() == {"t": 12} and ds.split("test")[0].modalities == ("t",)
    assert [u.speaker for u in ds.split("test")[0].utterances] == ["M", "F"]


@pytest.mark.parametrize("variant, name, dims", [
    ("iemocap", "IEMOCAP_features.pkl", (100, 100, 512)),
    ("meld", "MELD_features_raw1.pkl", (600, 300, 342)),
])
def test_dialoguernn_files(tmp_path, variant, name, dims):
    train, test = (IEMOCAP_TRAIN, IEMOCAP_TEST) if variant == "iemocap" else (MELD_TRAIN, MELD_TEST)
    dump(tmp_path / name, dialoguernn_tuple(variant, dims, train, test))
    for data in (tmp_path / name, tmp_path):  # the file, or the folder holding it
        ds = load_dataset("dialoguernn", data)
        assert ds.name == f"dialoguernn-{variant}"
        assert ds.feature_dims() == dict(zip("tav", dims))
        assert set(ds.splits) == {"train", "dev", "test"} and len(ds.split("dev")) == 1


def test_dev_hold_out_is_deterministic_and_disjoint():
    vids = [f"Ses0{s}{g}_impro0{i}" for s in range(1, 5) for g in "FM" for i in range(1, 6)]
    train, dev = hold_out_dev(vids, 0.1)
    assert len(dev) == 4 and sorted(train + dev) == sorted(vids) and not set(train) & set(dev)
    assert hold_out_dev(list(reversed(vids)), 0.1)[1] == list(reversed(dev))
    assert hold_out_dev(vids, 0.0) == (vids, [])
    assert hold_out_dev(["only"], 0.1) == (["only"], [])


def test_variant_from_name_or_explicit(tmp_path):
    directory = write_multiemo(tmp_path / "features", "iemocap", dims={"Text": 4})
    with pytest.raises(DataError, match="features: cannot tell MELD from IEMOCAP"):
        load_multiemo(directory)
    assert load_multiemo(directory, variant="iemocap").name == "multiemo-iemocap"
    with pytest.raises(DataError, match="unknown variant 'emory'"):
        load_multiemo(directory, variant="emory")


def with_value(path, vid, value):
    """Rewrite one dialogue's entry in a features dict pickle."""
    table = pickle.loads(path.read_bytes())
    table[vid] = value
    dump(path, table)


@pytest.mark.parametrize("bad, message", [
    (np.nan, r"TextFeatures\.pkl, dialogue 11, modality 't', utterance 1: NaN or inf"),
    (np.inf, r"TextFeatures\.pkl, dialogue 11, modality 't', utterance 1: NaN or inf"),
])
def test_non_finite_features_name_file_dialogue_utterance(tmp_path, bad, message):
    directory = write_multiemo(tmp_path / "MELD", "meld", dims={"Text": 4})
    x = np.ones((3, 4), np.float32)
    x[1, 2] = bad
    with_value(directory / "TextFeatures.pkl", 11, x)
    with pytest.raises(DataError, match=message):
        load_multiemo(directory)


@pytest.mark.parametrize("bad, message", [
    (np.ones((3, 4)) + 1j, r"dialogue 11, modality 't': features of dtype complex128, expected real numbers"),
    (np.full((3, 4), "0.5"), r"dialogue 11, modality 't': features of dtype <U3, expected real numbers"),
    (np.zeros((3, 0), np.float32), r"dialogue 11, modality 't': features of shape \(3, 0\), expected \(3, dim\) .*dim ≥ 1"),
    ([np.ones(4), np.ones(3), np.ones(4)], r"dialogue 11, modality 't': not a numeric \[n_utt, dim\] array"),
    (np.full((3, 4), 1e300), r"dialogue 11, modality 't', utterance 0: NaN or inf feature values \(or beyond float32's range\)"),
])
def test_features_that_are_not_finite_reals_name_the_dialogue(tmp_path, bad, message):
    directory = write_multiemo(tmp_path / "MELD", "meld", dims={"Text": 4})
    with_value(directory / "TextFeatures.pkl", 11, bad)
    with pytest.raises(DataError, match=r"TextFeatures\.pkl, " + message):
        load_multiemo(directory)


@pytest.mark.parametrize("corrupt, message", [
    (lambda e: e[8].append(10), r"dialogue 10 is listed in both trainVid and testVid; expected each dialogue once"),
    (lambda e: e[7].append(10), r"dialogue 10 is listed twice in trainVid"),
    (lambda e: e[8].append("1"), r"dialogue '1' is listed twice in testVid"),  # 1 and '1' would both be dialogue "1"
    (lambda e: e[1][10].__setitem__(0, []), r"dialogue 10, utterance 0: speaker \[\] is neither a name, an index"),
    (lambda e: e[1][10].__setitem__(1, [0.0] * 9), r"dialogue 10, utterance 1: speaker \[0\.0, .*\] is neither"),
    (lambda e: e[6][10].__setitem__(1, None), r"dialogue 10, utterance 1: videoSentence entry None is of type NoneType"),
])
def test_malformed_tuple_names_file_and_dialogue(tmp_path, corrupt, message):
    entries = dialoguernn_tuple("meld", (3, 3, 3), MELD_TRAIN, MELD_TEST)
    corrupt(entries)
    with pytest.raises(DataError, match=r"MELD_features_raw1\.pkl(: |, )" + message):
        load_dialoguernn(dump(tmp_path / "MELD_features_raw1.pkl", entries))


def test_dims_differing_between_splits_name_the_dialogue(tmp_path):
    directory = write_multiemo(tmp_path / "MELD", "meld", dims={"Audio": 4})
    with_value(directory / "AudioFeatures.pkl", 2, np.zeros((3, 5), np.float32))  # a test dialogue
    with pytest.raises(DataError, match=r"AudioFeatures\.pkl, dialogue 2, modality 'a': feature dimension 5, expected 4"):
        load_multiemo(directory)


def test_wrong_utterance_count_names_the_dialogue(tmp_path):
    directory = write_multiemo(tmp_path / "MELD", "meld", dims={"Visual": 4})
    with_value(directory / "VisualFeatures.pkl", 10, np.zeros((7, 4), np.float32))
    with pytest.raises(DataError, match=r"VisualFeatures\.pkl, dialogue 10, modality 'v': features of shape \(7, 4\), expected \(2, dim\)"):
        load_multiemo(directory)


def test_vid_absent_from_a_features_file_names_it(tmp_path):
    directory = write_multiemo(tmp_path / "MELD", "meld", dims={"Text": 4})
    table = pickle.loads((directory / "TextFeatures.pkl").read_bytes())
    del table[1]
    dump(directory / "TextFeatures.pkl", table)
    with pytest.raises(DataError, match=r"TextFeatures\.pkl: dialogue 1 is listed in a split but absent from the 't' features"):
        load_multiemo(directory)


def test_vid_absent_from_the_tuple_names_it(tmp_path):
    entries = dialoguernn_tuple("iemocap", (3, 3, 3), IEMOCAP_TRAIN, IEMOCAP_TEST)
    del entries[1]["Ses05F_impro01"]
    path = dump(tmp_path / "IEMOCAP_features.pkl", entries)
    with pytest.raises(DataError, match=r"IEMOCAP_features\.pkl: dialogue 'Ses05F_impro01' is listed in a split but absent from videoSpeakers"):
        load_dialoguernn(path)


def test_wrong_tuple_and_empty_dialogue(tmp_path):
    entries = dialoguernn_tuple("iemocap", (3, 3, 3), IEMOCAP_TRAIN, IEMOCAP_TEST)
    with pytest.raises(DataError, match=r"IEMOCAP_features\.pkl: found a list of 8 entries; expected a 9- or 10-entry tuple"):
        load_dialoguernn(dump(tmp_path / "IEMOCAP_features.pkl", entries[:8]))
    entries[2]["Ses01F_impro01"] = []
    with pytest.raises(DataError, match=r"IEMOCAP_features\.pkl, dialogue 'Ses01F_impro01': empty dialogue"):
        load_dialoguernn(dump(tmp_path / "IEMOCAP_features.pkl", entries))


class RunsCode:
    def __reduce__(self):
        return os.system, ("true",)


def test_features_go_through_the_restricted_unpickler(tmp_path):
    directory = write_multiemo(tmp_path / "MELD", "meld", dims={"Text": 4})
    dump(directory / "AudioFeatures.pkl", {1: RunsCode()})
    with pytest.raises(DataError, match=r"AudioFeatures\.pkl: refused to unpickle global"):
        load_multiemo(directory)


def test_data_stats_command_on_multiemo(tmp_path, capsys):
    directory = write_multiemo(tmp_path / "features", "meld", dims={"Text": 4})
    assert main(["data-stats", "--dataset", "multiemo", "--data", str(directory), "--variant", "meld",
                 "--split", "test"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["n_dialogues"] == 2 and stats["n_utterances"] == 2 + 3
    assert sum(stats["label_counts"].values()) == 5


def test_train_and_evaluate_take_the_variant_from_the_command_line_and_checkpoint(tmp_path):
    directory = write_multiemo(tmp_path / "features", "iemocap", dims={"Text": 6, "Audio": 4, "Visual": 4})
    run = tmp_path / "run"
    tiny = ["--modalities", "t", "--epochs", "1", "--T", "2", "--quiet"]
    assert main(["train", "--dataset", "multiemo", "--data", str(directory), *tiny, "--out", str(run)]) == 2
    assert main(["train", "--dataset", "multiemo", "--data", str(directory), "--variant", "iemocap",
                 *tiny, "--out", str(run)]) == 0
    assert main(["evaluate", "--checkpoint", str(run / "best.pt"), "--dataset", "multiemo", "--data", str(directory),
                 "--split", "test", "--out", str(tmp_path / "r.json")]) == 0
    assert json.loads((tmp_path / "r.json").read_text())["dataset"] == "multiemo-iemocap"
