"""Dialogues → padded utterance-first tensors."""
import numpy as np
import pytest
import torch

from neuro_erc.data import IGNORE_LABEL, DataError, Dialogue, DialogueDataset, LabelSet, Utterance, collate, iterate_batches


def dialogue(id_, n, dims={"t": 3, "a": 2}, speakers="AB"):
    return Dialogue(id_, [
        Utterance(speakers[i % len(speakers)], i % 2, f"u{i}", {m: np.full(d, i + 1, np.float32) for m, d in dims.items()})
        for i in range(n)
    ])


def test_collate_pads_masks_and_ignores_padding_labels():
    batch = collate([dialogue("d0", 2), dialogue("d1", 4)], ["t", "a"])
    assert batch.features["t"].shape == (4, 2, 3) and batch.features["a"].shape == (4, 2, 2)
    assert batch.mask[:, 0].tolist() == [True, True, False, False]
    assert batch.labels[2:, 0].tolist() == [IGNORE_LABEL] * 2
    assert torch.all(batch.features["t"][2:, 0] == 0)
    assert batch.speakers[:, 1].tolist() == [0, 1, 0, 1]
    assert batch.dialogue_ids == ["d0", "d1"]


def test_collate_subset_of_modalities_and_missing_modality_error():
    assert set(collate([dialogue("d0", 2)], ["a"]).features) == {"a"}
    with pytest.raises(DataError, match="'d0'.*'v'"):
        collate([dialogue("d0", 2)], ["v"])


def test_iterate_batches_shuffles_deterministically_and_covers_all():
    ds = [dialogue(f"d{i}", 1 + i % 3) for i in range(10)]
    ids = lambda seed: [i for b in iterate_batches(ds, ["t"], 3, shuffle=True, seed=seed) for i in b.dialogue_ids]
    assert ids(1) == ids(1) and ids(1) != ids(2)
    assert sorted(ids(1)) == sorted(d.id for d in ds)


def test_validate_names_dialogue_for_nan_and_dimension_mismatch():
    labels = LabelSet("x", ("a", "b"))
    bad = dialogue("d9", 2)
    bad.utterances[1].features["t"][0] = np.nan
    with pytest.raises(DataError, match="dialogue 'd9', utterance 1: modality 't' has NaN"):
        DialogueDataset("x", labels, {"train": [bad]}).validate()
    with pytest.raises(DataError, match="split 'dev', dialogue 'e0'.*dimension 5, expected 3"):
        DialogueDataset("x", labels, {"train": [dialogue("d0", 2)], "dev": [dialogue("e0", 2, {"t": 5, "a": 2})]}).validate()
    with pytest.raises(DataError, match="dialogue 'z': empty dialogue"):
        DialogueDataset("x", labels, {"train": [Dialogue("z", [])]}).validate()
