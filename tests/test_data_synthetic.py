"""The synthetic dataset: MELD-like class balance, persistent emotions, determinism, learnability."""
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from neuro_erc.data.registry import load_dataset
from neuro_erc.data.synthetic import CLASS_PRIOR, DEFAULT_DIMS, make_synthetic

TINY = {"t": 2, "a": 2, "v": 2}


def labels(dialogues):
    return np.array([u.label for d in dialogues for u in d.utterances])


def test_class_proportions_follow_the_meld_like_prior():
    y = labels(make_synthetic(seed=1, n_train=400, n_dev=0, n_test=0, dims=TINY).split("train"))
    assert len(y) > 3000
    np.testing.assert_allclose(np.bincount(y, minlength=7) / len(y), CLASS_PRIOR, atol=0.04)


def test_a_speakers_emotion_persists_well_above_chance():
    ds = make_synthetic(seed=2, n_train=300, n_dev=0, n_test=0, dims=TINY)
    same = []
    for d in ds.split("train"):
        last = {}
        for u in d.utterances:
            if u.speaker in last:
                same.append(last[u.speaker] == u.label)
            last[u.speaker] = u.label
    chance = float(np.sum(np.square(CLASS_PRIOR)))  # ≈ 0.29: two independent draws from the prior agree
    assert np.mean(same) > chance + 0.3


def test_shape_of_the_default_dataset():
    ds = load_dataset("synthetic")  # validated on load
    assert ds.name == "synthetic" and ds.labels.labels[0] == "neutral" and len(ds.labels) == 7
    assert {s: len(d) for s, d in ds.splits.items()} == {"train": 240, "dev": 60, "test": 60}
    assert ds.feature_dims() == DEFAULT_DIMS
    lengths = [len(d) for s in ds.splits.values() for d in s]
    assert min(lengths) >= 4 and max(lengths) <= 16
    assert {len({u.speaker for u in d.utterances}) for d in ds.split("train")} <= {1, 2, 3}


def flat(ds, split, modalities):
    x = np.array([np.concatenate([u.features[m] for m in modalities]) for d in ds.split(split) for u in d.utterances])
    return x, labels(ds.split(split))


def test_deterministic_per_seed_and_different_across_seeds():
    a, b, c = (make_synthetic(seed=s, n_train=5, n_dev=2, n_test=2) for s in (7, 7, 8))
    for split in ("train", "dev", "test"):
        np.testing.assert_array_equal(flat(a, split, "tav")[0], flat(b, split, "tav")[0])
        np.testing.assert_array_equal(flat(a, split, "tav")[1], flat(b, split, "tav")[1])
    assert not np.array_equal(flat(a, "train", "t")[0][:10], flat(c, "train", "t")[0][:10])
    more_train = make_synthetic(seed=7, n_train=9, n_dev=2, n_test=2)
    np.testing.assert_array_equal(flat(a, "dev", "tav")[0], flat(more_train, "dev", "tav")[0])


@pytest.fixture(scope="module")
def linear_scores():
    ds = make_synthetic(seed=0, n_train=240, n_dev=0, n_test=120)
    scores = {}
    for modalities in ("t", "a", "v", "tav"):
        x, y = flat(ds, "train", modalities)
        x_test, y_test = flat(ds, "test", modalities)
        predicted = LogisticRegression(max_iter=1000).fit(x, y).predict(x_test)
        scores[modalities] = 100 * f1_score(y_test, predicted, average="weighted")
    return scores


def test_fusion_helps_a_linear_classifier_and_nothing_is_trivial(linear_scores):
    for single in "tav":
        assert linear_scores[single] < linear_scores["tav"] - 10, linear_scores
    assert linear_scores["tav"] < 90, linear_scores
