"""The HDF5 feature store: layout, provenance, reuse rule, atomic writes, block checksums."""
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest

from neuro_erc.data import DataError
from neuro_erc.features.store import (
    CHECKSUM, DialogueKey, Encoder, FeatureStore, block_checksum, default_store_path, fetch_or_compute, input_hash,
)

ENC = Encoder("text.toy", "toy encoder", "toy 1.0")
A, B = DialogueKey("toy", "train", "d0"), DialogueKey("toy", "dev", "a/b")


def rows(n, dim=4, value=1.0):
    return np.full((n, dim), value, np.float32)


def test_round_trip_layout_and_provenance(tmp_path):
    store = FeatureStore(tmp_path / "f.h5")
    store.write(ENC, {A: ("h0", rows(2)), B: ("h1", rows(3, value=2.0))})
    got = store.read(ENC, {A: "h0", B: None})
    np.testing.assert_array_equal(got[A], rows(2))
    np.testing.assert_array_equal(got[B], rows(3, value=2.0))
    assert got[A].dtype == np.float32
    with h5py.File(tmp_path / "f.h5", "r") as f:
        # one [n_utt, dim] dataset per dialogue; '/' in an id is escaped, not a subgroup
        assert f["text.toy/toy/dev/a%2Fb"].shape == (3, 4)
        assert f["text.toy/toy/train/d0"].attrs["input_hash"] == "h0"
    prov = store.provenance("text.toy")
    assert prov["encoder"] == "toy encoder" and prov["version"] == "toy 1.0" and prov["dim"] == 4
    assert prov["created"].startswith("20")


def test_changed_inputs_or_encoder_version_are_misses(tmp_path):
    store = FeatureStore(tmp_path / "f.h5")
    store.write(ENC, {A: ("h0", rows(2)), B: ("h1", rows(3))})
    assert set(store.read(ENC, {A: "other", B: "h1"})) == {B}
    newer = Encoder(ENC.key, ENC.name, "toy 2.0")
    assert store.read(newer, {A: "h0", B: "h1"}) == {}
    # writing under the new version drops every old row of that encoder, keeps other encoders
    other = Encoder("audio.toy", "toy audio", "1")
    store.write(other, {A: ("x", rows(2, dim=3))})
    store.write(newer, {A: ("h0", rows(2, value=5.0))})
    assert store.read(newer, {A: "h0", B: "h1"}).keys() == {A}
    assert store.read(other, {A: "x"}).keys() == {A}


def test_update_keeps_other_dialogues_and_rejects_a_new_dim(tmp_path):
    store = FeatureStore(tmp_path / "f.h5")
    store.write(ENC, {A: ("h0", rows(2))})
    created = store.provenance("text.toy")["created"]
    store.write(ENC, {B: ("h1", rows(3))})
    assert store.read(ENC, {A: "h0", B: "h1"}).keys() == {A, B}
    assert store.provenance("text.toy")["created"] == created
    before = (tmp_path / "f.h5").read_bytes()
    with pytest.raises(DataError, match="4-d features.*new ones are 5-d"):
        store.write(ENC, {B: ("h2", rows(3, dim=5))})
    assert (tmp_path / "f.h5").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.h5", "f.h5.lock"]


def test_crash_mid_write_leaves_the_previous_store_intact(tmp_path):
    path = tmp_path / "f.h5"
    FeatureStore(path).write(ENC, {A: ("h0", rows(2))})
    before = path.read_bytes()
    # A writer process dies (no cleanup, no exception handling) after its first new dataset.
    script = textwrap.dedent(f"""
        import os, h5py, numpy as np
        from neuro_erc.features.store import DialogueKey, Encoder, FeatureStore
        real = h5py.Group.create_dataset
        def dying(self, *args, **kwargs):
            real(self, *args, **kwargs)
            os._exit(9)
        h5py.Group.create_dataset = dying
        enc = Encoder({ENC.key!r}, {ENC.name!r}, {ENC.version!r})
        FeatureStore({str(path)!r}).write(enc, {{
            DialogueKey("toy", "train", "d1"): ("h1", np.zeros((2, 4), np.float32)),
            DialogueKey("toy", "train", "d2"): ("h2", np.zeros((2, 4), np.float32)),
        }})
    """)
    assert subprocess.run([sys.executable, "-c", script]).returncode == 9
    assert path.read_bytes() == before
    assert FeatureStore(path).read(ENC, {A: "h0"}).keys() == {A}
    assert any(p.name.endswith(".tmp") for p in tmp_path.iterdir())  # the dead writer's file
    FeatureStore(path).write(ENC, {B: ("h1", rows(3))})  # the next writer cleans it up
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


def test_fetch_or_compute_computes_only_what_changed(tmp_path):
    store = FeatureStore(tmp_path / "f.h5")
    calls = []

    def compute(missing):
        calls.append(sorted(missing))
        return {k: np.stack([np.full(4, len(t), np.float32) for t in texts]) for k, texts in missing.items()}

    inputs = {A: ["a", "bb"], B: ["ccc"]}
    first = fetch_or_compute(store, ENC, inputs, compute)
    assert not first.cached and first.n_computed_utterances == 3 and first.dim == 4
    again = fetch_or_compute(store, ENC, inputs, compute)
    assert again.cached and len(calls) == 1
    np.testing.assert_array_equal(again.features[A], first.features[A])
    changed = fetch_or_compute(store, ENC, {A: ["a", "bbbb"], B: ["ccc"]}, compute)
    assert calls[-1] == [A] and changed.n_computed_dialogues == 1
    assert changed.features[A][1, 0] == 4
    summary = changed.summary()
    assert summary["n_utterances"] == 3 and summary["cached"] is False and summary["store"] == str(store.path)


def test_fetch_or_compute_rejects_wrong_rows(tmp_path):
    with pytest.raises(DataError, match="expected 2 finite feature rows"):
        fetch_or_compute(FeatureStore(tmp_path / "f.h5"), ENC, {A: ["a", "b"]},
                         lambda missing: {A: np.full((2, 4), np.nan, np.float32)})
    assert not (tmp_path / "f.h5").exists()


def test_input_hash_is_order_and_boundary_sensitive():
    assert input_hash(["ab", "c"]) != input_hash(["a", "bc"]) != input_hash(["c", "ab"])
    assert input_hash(["x"]) == input_hash(["x"])


def test_unreadable_store_and_default_path(tmp_path, monkeypatch):
    (tmp_path / "bad.h5").write_text("not hdf5")
    with pytest.raises(DataError, match=r"feature store .*bad\.h5: not a readable HDF5 file.*delete it"):
        FeatureStore(tmp_path / "bad.h5").read(ENC, {A: None})
    monkeypatch.setenv("NEURO_ERC_CACHE", str(tmp_path))
    assert default_store_path() == tmp_path / "features.h5"
    assert FeatureStore().path == tmp_path / "features.h5"
    monkeypatch.delenv("NEURO_ERC_CACHE")
    assert default_store_path().parts[-3:] == (".cache", "neuro-erc", "features.h5")


def zero_block(path, block):
    """Overwrite a stored block's bytes with zeros in place, as a damaged disk or copy would."""
    with h5py.File(path, "r") as f:
        offset, size = f[block].id.get_offset(), f[block].id.get_storage_size()
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(bytes(size))


def test_blocks_carry_a_checksum_of_their_rows(tmp_path):
    FeatureStore(tmp_path / "f.h5").write(ENC, {A: ("h0", rows(2)), B: ("h1", rows(3, value=2.0))})
    with h5py.File(tmp_path / "f.h5", "r") as f:
        assert f["text.toy/toy/train/d0"].attrs[CHECKSUM] == block_checksum(rows(2))
    assert block_checksum(rows(2)) != block_checksum(rows(2, value=0.0)) != block_checksum(rows(1, dim=8))


def test_a_damaged_block_is_refused_not_served(tmp_path):
    path = tmp_path / "f.h5"
    inputs = {A: ["a", "b"], B: ["c", "d", "e"]}
    FeatureStore(path).write(ENC, {A: (input_hash(inputs[A]), rows(2)), B: (input_hash(inputs[B]), rows(3))})
    zero_block(path, "text.toy/toy/dev/a%2Fb")
    message = (r"feature store .*f\.h5: block text\.toy/toy/dev/a%2Fb does not match its sha256 checksum"
               r".*delete it and re-run `neuro-erc features`")
    with pytest.raises(DataError, match=message):  # not a "cached" result with rows of zeros
        fetch_or_compute(FeatureStore(path), ENC, inputs, lambda missing: pytest.fail("nothing is missing"))
    assert FeatureStore(path).read(ENC, {A: None}).keys() == {A}  # the intact block still reads
    before = path.read_bytes()
    with pytest.raises(DataError, match=message):  # nor is the damaged one copied into a new file
        FeatureStore(path).write(ENC, {A: ("h2", rows(2))})
    assert path.read_bytes() == before


def test_a_store_without_checksums_is_refused(tmp_path):
    path = tmp_path / "f.h5"
    FeatureStore(path).write(ENC, {A: ("h0", rows(2))})
    with h5py.File(path, "r+") as f:
        del f["text.toy/toy/train/d0"].attrs[CHECKSUM]
    with pytest.raises(DataError, match=r"block text\.toy/toy/train/d0 has no sha256 checksum.*re-create it"):
        FeatureStore(path).read(ENC, {A: "h0"})


def test_a_block_h5py_cannot_read_names_the_store_and_block(tmp_path, monkeypatch):
    path = tmp_path / "f.h5"
    FeatureStore(path).write(ENC, {A: ("h0", rows(2))})

    def unreadable(self, key):
        raise OSError("Can't read data (wrong B-tree signature)")

    monkeypatch.setattr(h5py.Dataset, "__getitem__", unreadable)
    with pytest.raises(DataError, match=r"f\.h5: cannot read block text\.toy/toy/train/d0 \(OSError: Can't read data"):
        FeatureStore(path).read(ENC, {A: "h0"})
