"""COSMIC-style IEMOCAP pickle: splits, labels, errors naming the file and dialogue, real counts."""
import pickle

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
])
def test_malformed_content_names_file_and_dialogue(tmp_path, corrupt, message):
    content = cosmic()
    corrupt(content)
    with pytest.raises(DataError, match=r"x\.pkl.*" + message):
        load_iemocap(write(tmp_path / "x.pkl", content))


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
