"""openSMILE audio features: functionals from generated clips, manifests, the store, attaching."""
import csv
import json
import os

import numpy as np
import pytest
import soundfile

from neuro_erc.data import DataError, Dialogue, DialogueDataset, LabelSet, Utterance
from neuro_erc.features import audio as audio_mod
from neuro_erc.features.audio import attach_audio_features, extract_audio_features, read_manifest, smile_functionals

SR = 16000


def clip(path, seconds=1.0, freq=220.0, seed=0):
    """A sine tone plus a little noise, written as 16-bit PCM wav."""
    t = np.arange(int(SR * seconds)) / SR
    noise = np.random.default_rng(seed).normal(0, 0.02, t.size)
    soundfile.write(path, (0.3 * np.sin(2 * np.pi * freq * t) + noise).astype(np.float32), SR, subtype="PCM_16")
    return path


def manifest(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["dataset", "split", "dialogue_id", "utterance_index", "path"])
        writer.writerows(rows)
    return path


@pytest.fixture
def clips(tmp_path):
    """Two dialogues (2 + 1 utterances) with relative clip paths in the manifest."""
    (tmp_path / "wav").mkdir()
    for name, freq in [("d0_0", 200), ("d0_1", 300), ("d1_0", 400)]:
        clip(tmp_path / "wav" / f"{name}.wav", freq=freq)
    return manifest(tmp_path / "clips.csv", [
        ["toy", "train", "d0", 1, "wav/d0_1.wav"],
        ["toy", "train", "d0", 0, "wav/d0_0.wav"],
        ["toy", "dev", "d1", 0, "wav/d1_0.wav"],
    ])


def toy_dataset(lengths={"train": {"d0": 2}, "dev": {"d1": 1}}):
    return DialogueDataset("toy", LabelSet("toy", ("a",)), {
        split: [Dialogue(d, [Utterance("A", 0) for _ in range(n)]) for d, n in dialogues.items()]
        for split, dialogues in lengths.items()
    })


@pytest.mark.parametrize("feature_set,dim", [("eGeMAPSv02", 88), ("ComParE_2016", 6373)])
def test_functionals_of_a_one_second_clip(tmp_path, feature_set, dim):
    rows = smile_functionals([clip(tmp_path / "a.wav"), clip(tmp_path / "b.wav", freq=440)], feature_set, num_workers=2)
    assert rows.shape == (2, dim) and rows.dtype == np.float32
    assert np.all(np.isfinite(rows)) and not np.allclose(rows[0], rows[1])


def test_extract_attach_and_cached_rerun(tmp_path, clips, monkeypatch):
    store = tmp_path / "f.h5"
    result = extract_audio_features(clips, feature_set="eGeMAPSv02", store=store, progress=False)
    assert result.summary()["n_utterances"] == 3 and result.dim == 88 and not result.cached
    # the manifest's row order does not matter: rows follow utterance_index
    np.testing.assert_array_equal(
        result.features[("toy", "train", "d0")][0], smile_functionals([tmp_path / "wav/d0_0.wav"], "eGeMAPSv02")[0]
    )
    dataset = attach_audio_features(toy_dataset(), store=store, feature_set="eGeMAPSv02")
    assert dataset.feature_dims() == {"a": 88}
    dataset.validate()

    def refuse(feature_set):
        raise AssertionError("openSMILE must not run on a cached run")

    monkeypatch.setattr(audio_mod, "_extractor", refuse)
    assert extract_audio_features(clips, feature_set="eGeMAPSv02", store=store, progress=False).cached
    # a re-written clip (new mtime) is processed again, alone
    monkeypatch.undo()
    path = tmp_path / "wav/d1_0.wav"
    clip(path, freq=500)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    again = extract_audio_features(clips, feature_set="eGeMAPSv02", store=store, progress=False)
    assert again.n_computed_dialogues == 1 and again.n_computed_utterances == 1


def test_attach_names_what_is_missing(tmp_path, clips):
    store = tmp_path / "f.h5"
    with pytest.raises(DataError, match="'d0'.*no eGeMAPSv02 audio features.*no audio.eGeMAPSv02"):
        attach_audio_features(toy_dataset(), store=store, feature_set="eGeMAPSv02")
    extract_audio_features(clips, feature_set="eGeMAPSv02", store=store, progress=False)
    with pytest.raises(DataError, match="'d2'.*not in it"):
        attach_audio_features(toy_dataset({"train": {"d0": 2, "d2": 1}}), store=store, feature_set="eGeMAPSv02")
    with pytest.raises(DataError, match="'d0'.*3 utterances but audio features for 2 clips"):
        attach_audio_features(toy_dataset({"train": {"d0": 3}}), store=store, feature_set="eGeMAPSv02")


def test_missing_short_and_unreadable_clips_are_named(tmp_path, clips):
    os.remove(tmp_path / "wav/d0_1.wav")
    with pytest.raises(DataError, match=r"d0_1\.wav \(dataset 'toy', split 'train', dialogue 'd0'\) does not exist"):
        extract_audio_features(clips, feature_set="eGeMAPSv02", store=tmp_path / "f.h5", progress=False)
    soundfile.write(tmp_path / "short.wav", np.zeros(10, np.float32), SR)
    with pytest.raises(DataError, match="short.wav: openSMILE eGeMAPSv02 gave 88 NaN"):
        smile_functionals([tmp_path / "short.wav"], "eGeMAPSv02")
    (tmp_path / "junk.wav").write_bytes(b"not audio")
    with pytest.raises(DataError, match="junk.wav: openSMILE could not process it"):
        smile_functionals([tmp_path / "junk.wav"], "eGeMAPSv02")
    assert not (tmp_path / "f.h5").exists()


def test_manifest_errors(tmp_path):
    with pytest.raises(DataError, match="nope.csv does not exist"):
        read_manifest(tmp_path / "nope.csv")
    (tmp_path / "cols.csv").write_text("dataset,split,path\ntoy,train,a.wav\n")
    with pytest.raises(DataError, match=r"missing column\(s\) \['dialogue_id', 'utterance_index'\]"):
        read_manifest(tmp_path / "cols.csv")
    bad_index = manifest(tmp_path / "idx.csv", [["toy", "train", "d0", "first", "a.wav"]])
    with pytest.raises(DataError, match="idx.csv, line 2: utterance_index 'first' is not an integer"):
        read_manifest(bad_index)
    gap = manifest(tmp_path / "gap.csv", [["toy", "train", "d0", 0, "a.wav"], ["toy", "train", "d0", 2, "b.wav"]])
    with pytest.raises(DataError, match="'d0'.*missing \\[1\\]"):
        extract_audio_features(gap, feature_set="eGeMAPSv02", store=tmp_path / "f.h5")
    with pytest.raises(DataError, match="unknown openSMILE feature set 'MFCC'"):
        extract_audio_features(gap, feature_set="MFCC", store=tmp_path / "f.h5")


def test_features_audio_command(tmp_path, clips, capsys):
    import argparse

    from neuro_erc.features import cli

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["features", "audio", "--manifest", str(clips), "--feature-set", "eGeMAPSv02",
                              "--store", str(tmp_path / "f.h5"), "--no-progress"])
    assert args.func(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n_utterances"] == 3 and summary["dim"] == 88 and summary["modality"] == "a"
    assert summary["cached"] is False and summary["store"] == str(tmp_path / "f.h5")
