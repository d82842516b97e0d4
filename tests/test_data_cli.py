"""``neuro-erc data-stats`` through the command-line entry point, and the registry's defaults."""
import gzip
import json

import pytest

from neuro_erc.cli import main
from neuro_erc.data import DataError
from neuro_erc.data.registry import load_dataset


def stats(capsys, *args):
    assert main(["data-stats", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_all_splits_of_synthetic(capsys):
    out = stats(capsys, "--dataset", "synthetic")
    assert set(out) == {"train", "dev", "test"}
    assert out["dev"]["n_dialogues"] == 60 and out["train"]["max_dialogue_len"] <= 16
    assert sum(out["train"]["label_counts"].values()) == out["train"]["n_utterances"]


def test_one_split_and_errors(capsys, monkeypatch):
    assert stats(capsys, "--dataset", "synthetic", "--split", "test")["split"] == "test"
    assert main(["data-stats", "--dataset", "synthetic", "--split", "valid"]) == 2
    assert "has no split 'valid'" in capsys.readouterr().err
    monkeypatch.delenv("NEURO_ERC_DATA", raising=False)
    assert main(["data-stats", "--dataset", "meld"]) == 2
    assert "pass --data PATH, or set NEURO_ERC_DATA" in capsys.readouterr().err


@pytest.mark.parametrize("content, message", [
    (gzip.compress(b"Utterance,Speaker,Emotion,Dialogue_ID,Utterance_ID\r\n"), "train_sent_emo.csv: the file is gzip-compressed"),
    (b"Utterance,Speaker,Emotion,Dialogue_ID,Utterance_ID\r\n", "train_sent_emo.csv: no utterances, only a header"),
])
def test_bad_data_is_one_error_line_naming_the_file(tmp_path, capsys, content, message):
    (tmp_path / "train_sent_emo.csv").write_bytes(content)
    assert main(["data-stats", "--dataset", "meld", "--data", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("neuro-erc data-stats: error: ")
    assert message in captured.err and captured.err.count("\n") == 1


def test_registry_refuses_unknown_names_and_data_for_synthetic():
    with pytest.raises(DataError, match="unknown dataset 'emorynlp'"):
        load_dataset("emorynlp")
    with pytest.raises(DataError, match="takes no data path"):
        load_dataset("synthetic", "somewhere")


@pytest.mark.realdata
def test_real_data_through_the_command(capsys, shared_data):
    meld = stats(capsys, "--dataset", "meld", "--data", str(shared_data / "meld"))
    assert (meld["train"]["n_dialogues"], meld["train"]["n_utterances"]) == (1038, 9989)
    assert (meld["dev"]["n_dialogues"], meld["dev"]["n_utterances"]) == (114, 1109)
    assert meld["train"]["label_counts"]["neutral"] == 4710 and meld["train"]["max_dialogue_len"] == 24
    iemocap = stats(capsys, "--dataset", "iemocap", "--data", str(shared_data / "iemocap"))
    assert (iemocap["train"]["n_dialogues"], iemocap["dev"]["n_dialogues"]) == (108, 12)
    assert iemocap["train"]["n_utterances"] + iemocap["dev"]["n_utterances"] == 5810
