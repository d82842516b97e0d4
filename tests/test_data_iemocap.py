"""COSMIC-style IEMOCAP pickle: splits, labels, errors naming the file and dialogue, real counts."""
import pickle

import numpy as np
import pytest

from neuro_erc.data import DataError
from neuro_erc.data.iemocap import IEMOCAP_LABELS, load_iemocap
from neuro_erc.data.registry import load_dataset


def cosmic(train=("Ses01F_impro01", "Ses01F_impro02"), valid=("Ses02M_script01_1",), test=()):
    """The 6-list [speakers, labels, sentences, trainVid, testVid, validVid]."""
    vids = [*train, *valid, *test]
    speakers = {v: ["M", "F", "M"][: 2 + i % 2] for i, v in enumerate(vids)}
    labels = {v: [i % 6, (i + 3) % 6, 5][: len(speakers[v])] for i, v in enumerate(vids)}
    sentences = {v: [f"{v} line {j}" for j in range(len(speakers[v]))] for v in vids}
    return [speakers, labels, sentences, list(train), list(test), list(valid)]


def write(path, content):
    path.write_bytes(pickle.dumps(content))
    return path


def test_loads_train_and_dev_and_omits_an_empty_test(tmp_path):
    write(tmp_path / "iemocap.pkl", cosmic())
    ds = load_iemocap(tmp_path)  # the folder's single .pkl
    assert set(ds.splits) == {"train", "dev"} and ds.labels is IEMOCAP_LABELS
    assert [d.id for d in ds.split("train")] == ["Ses01F_impro01", "Ses01F_impro02"]
    first = ds.split("train")[0].utterances
    assert [u.speaker for u in first] == ["M", "F"] and [u.label for u in first] == [0, 3]
    assert first[1].text == "Ses01F_impro01 line 1"
    assert ds.labels.labels == ("hap", "sad", "neu", "ang", "exc", "fru")
    ds.validate()


def test_test_split_kept_when_listed(tmp_path):
    ds = load_iemocap(write(tmp_path / "x.pkl", cosmic(test=("Ses05F_impro01",))))
    assert [d.id for d in ds.split("test")] == ["Ses05F_impro01"]


def test_registry_without_text_features(tmp_path):
    ds = load_dataset("iemocap", write(tmp_path / "x.pkl", cosmic()), text_features=False)
    assert ds.stats("dev")["n_utterances"] == 2


def test_vid_listed_but_absent_names_it(tmp_path):
    content = cosmic()
    del content[2]["Ses01F_impro02"]
    with pytest.raises(DataError, match=r"x\.pkl: dialogue 'Ses01F_impro02' is listed in a split but absent from sentences"):
        load_iemocap(write(tmp_path / "x.pkl", content))


@pytest.mark.parametrize("corrupt, message", [
    (lambda c: c[0].__setitem__("Ses01F_impro01", ["M"]), r"dialogue 'Ses01F_impro01': speakers has 1 entries, expected 2"),
    (lambda c: c[1].__setitem__("Ses01F_impro01", [0, 9]), r"dialogue 'Ses01F_impro01', utterance 1: label 9"),
    (lambda c: c.pop(), r"expected a 6-entry list"),
    (lambda c: c.__setitem__(3, []), r"trainVid is empty"),
    (lambda c: c.__setitem__(3, [["Ses01F_impro01"]]), r"trainVid holds \['Ses01F_impro01'\], a list; expected dialogue ids"),
    (lambda c: c.__setitem__(3, [True]), r"trainVid holds True, a bool; expected dialogue ids"),
    (lambda c: c[0]["Ses01F_impro01"].__setitem__(0, []), r"dialogue 'Ses01F_impro01', utterance 0: speaker \[\] is neither"),
    (lambda c: c[0]["Ses01F_impro01"].__setitem__(1, [0, 0]), r"utterance 1: speaker \[0, 0\] is neither a name, an index"),
    (lambda c: c[0].__setitem__("Ses01F_impro01", np.array("MF")), r"dialogue 'Ses01F_impro01': speakers is a ndarray"),
    (lambda c: c[2]["Ses01F_impro01"].__setitem__(0, None), r"utterance 0: sentences entry None is of type NoneType, expected a string"),
    (lambda c: c[2]["Ses01F_impro01"].__setitem__(1, b"Hi"), r"utterance 1: sentences entry b'Hi' is of type bytes, expected a string"),
    (lambda c: c[2]["Ses01F_impro01"].__setitem__(1, 7), r"utterance 1: sentences entry 7 is of type int, expected a string"),
    (lambda c: c[2]["Ses01F_impro01"].__setitem__(1, "Hi \ud800"),
     r"dialogue 'Ses01F_impro01', utterance 1: sentences entry 'Hi \\ud800' holds a lone surrogate U\+D800 at position 3"),
    (lambda c: c[5].append("Ses01F_impro02"),
     r"dialogue 'Ses01F_impro02' is listed in both trainVid and validVid; expected each dialogue once, in one split"),
    (lambda c: c[4].append("Ses01F_impro01"), r"dialogue 'Ses01F_impro01' is listed in both trainVid and testVid"),
    (lambda c: c[3].append("Ses01F_impro01"), r"dialogue 'Ses01F_impro01' is listed twice in trainVid"),
])
def test_malformed_content_names_file_and_dialogue(tmp_path, corrupt, message):
    content = cosmic()
    corrupt(content)
    with pytest.raises(DataError, match=r"x\.pkl.*" + message):
        load_iemocap(write(tmp_path / "x.pkl", content))


def test_a_pickle_that_is_not_the_6_list_names_the_file(tmp_path):
    with pytest.raises(DataError, match=r"x\.pkl: expected a 6-entry list .*, found a dict"):
        load_iemocap(write(tmp_path / "x.pkl", dict(enumerate(cosmic()))))


def test_empty_dialogue_names_file_and_dialogue(tmp_path):
    content = cosmic()
    for table in content[:3]:
        table["Ses01F_impro01"] = []
    with pytest.raises(DataError, match=r"x\.pkl, dialogue 'Ses01F_impro01': empty dialogue"):
        load_iemocap(write(tmp_path / "x.pkl", content))


@pytest.mark.realdata
def test_real_iemocap_counts(shared_data):
    ds = load_iemocap(shared_data / "iemocap" / "iemocap_text_trainval.pkl")
    ds.validate()
    assert set(ds.splits) == {"train", "dev"}
    assert (len(ds.split("train")), len(ds.split("dev"))) == (108, 12)
    assert ds.stats("train")["n_utterances"] + ds.stats("dev")["n_utterances"] == 5810
    assert {u.speaker for d in ds.split("train") for u in d.utterances} == {"M", "F"}
