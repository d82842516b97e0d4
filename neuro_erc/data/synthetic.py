r"""The embedded default dataset: synthetic trimodal dialogues that reward context and fusion.

Labels are MELD's seven (:data:`SYNTHETIC_LABELS`, MultiEMO order) with MELD's long tail
(:data:`CLASS_PRIOR`: neutral 47 %, joy 17 %, surprise 12 %, anger 11 %, sadness 7 %,
disgust 3 %, fear 3 %).

**Dialogues.** 2 speakers (60 %) or 3, length uniform in ``[min_len, max_len]``; each
turn goes to another speaker with probability 0.75. Emotions follow a copy process:

* if the speaker has spoken before, with probability ``stay`` they keep their last emotion;
* otherwise, with probability ``contagion``, they take the previous utterance's emotion;
* otherwise the emotion is drawn fresh from :data:`CLASS_PRIOR`.

Every label is either a fresh prior draw or a copy of an earlier label, so by induction
each label's marginal is exactly the prior, while a speaker's consecutive labels agree far
more often than the chance level :math:`\sum_c \pi_c^2 \approx 0.29`: context helps.

**Features.** Each modality sees only a coarse partition of the classes
(:data:`MODALITY_GROUPS`): classes in one group share a mean in that modality, so text
alone cannot tell surprise from joy, audio cannot tell neutral from sadness, and so on;
every pair of classes is told apart by text or audio, most by two modalities: fusion
helps. An utterance's vector in modality ``m`` (dimension :math:`D_m`) is

.. math::  x = \mu_{m,g(y)} + b_{m,s} + \sigma\,\epsilon,\quad \epsilon \sim N(0, I)

with group means :math:`\mu` of norm ``separation`` in random (nearly orthogonal)
directions, so two groups lie about ``separation``·√2 noise standard deviations apart; a
per-dialogue speaker offset :math:`b` of norm about 0.5·``separation``; and noise σ = 1 per
coordinate. With probability ``dropout`` the mean is left out: the modality carries only
noise for that utterance, as a noisy microphone or an occluded face would.

Measured at the defaults (600 train / 300 test dialogues, seed 0): a logistic regression
on one utterance reaches weighted F1 52 (text), 49 (audio), 53 (visual) and 74 with all
three. At the default sizes a speaker-aware BiGRU over the fused features beats the same
network without the GRU by 4.4 points (74.2 vs 69.7 and 73.0 vs 68.7, two seeds, 30 epochs).

Defaults (240/60/60 dialogues, lengths 4–16, dims t 48, a 32, v 32) keep a small SpikEmo
run at about a minute on 2 CPU cores. Geometry, train, dev and test come from independent
streams of one ``numpy.random.SeedSequence(seed)``, so changing ``n_train`` does not change
dev or test.
"""
from __future__ import annotations

import numpy as np

from .meld import MELD_LABELS
from .types import Dialogue, DialogueDataset, LabelSet, Utterance

SYNTHETIC_LABELS = LabelSet("synthetic", MELD_LABELS.labels)
#                neutral surprise fear  sadness joy   disgust anger
CLASS_PRIOR = (0.47, 0.12, 0.03, 0.07, 0.17, 0.03, 0.11)
MODALITY_GROUPS = {
    # valence: neutral | surprise, joy | fear, sadness | disgust, anger
    "t": ((0,), (1, 4), (2, 3), (5, 6)),
    # arousal: neutral, sadness | surprise, fear, anger | joy, disgust
    "a": ((0, 3), (1, 2, 6), (4, 5)),
    # face: neutral, fear | surprise | sadness, disgust | joy, anger
    "v": ((0, 2), (1,), (3, 5), (4, 6)),
}
DEFAULT_DIMS = {"t": 48, "a": 32, "v": 32}
SPEAKERS = ("A", "B", "C")


def make_synthetic(
    seed: int = 0,
    n_train: int = 240,
    n_dev: int = 60,
    n_test: int = 60,
    dims: dict[str, int] | None = None,
    *,
    min_len: int = 4,
    max_len: int = 16,
    stay: float = 0.6,
    contagion: float = 0.3,
    separation: float = 1.6,
    dropout: float = 0.2,
) -> DialogueDataset:
    """Generate the synthetic dataset described in the module docstring (deterministic in ``seed``)."""
    dims = dict(DEFAULT_DIMS if dims is None else dims)
    geometry_seed, *split_seeds = np.random.SeedSequence(seed).spawn(4)
    means = _class_means(np.random.default_rng(geometry_seed), dims, separation)
    splits = {}
    for split, n, split_seed in zip(("train", "dev", "test"), (n_train, n_dev, n_test), split_seeds):
        rng = np.random.default_rng(split_seed)
        splits[split] = [
            _dialogue(f"{split}-{i:04d}", rng, means, min_len, max_len, stay, contagion, separation, dropout)
            for i in range(n)
        ]
    return DialogueDataset("synthetic", SYNTHETIC_LABELS, splits)


def _class_means(rng: np.random.Generator, dims: dict[str, int], separation: float) -> dict[str, np.ndarray]:
    """Per modality, a ``[n_classes, D]`` table: each class gets its group's mean (norm ``separation``)."""
    means = {}
    for m, d in dims.items():
        directions = rng.standard_normal((len(MODALITY_GROUPS[m]), d))
        directions *= separation / np.linalg.norm(directions, axis=1, keepdims=True)
        table = np.empty((len(CLASS_PRIOR), d))
        for g, classes in enumerate(MODALITY_GROUPS[m]):
            table[list(classes)] = directions[g]
        means[m] = table
    return means


def _dialogue(dialogue_id: str, rng: np.random.Generator, means: dict[str, np.ndarray], min_len: int,
              max_len: int, stay: float, contagion: float, separation: float, dropout: float) -> Dialogue:
    n_speakers = 2 if rng.random() < 0.6 else 3
    length = int(rng.integers(min_len, max_len + 1))
    offsets = {
        m: rng.standard_normal((n_speakers, mu.shape[1])) * (0.5 * separation / np.sqrt(mu.shape[1]))
        for m, mu in means.items()
    }
    last_label: dict[int, int] = {}
    speaker, previous = int(rng.integers(n_speakers)), None
    utterances = []
    for t in range(length):
        if t > 0 and rng.random() < 0.75:
            speaker = (speaker + 1 + int(rng.integers(n_speakers - 1))) % n_speakers
        if speaker in last_label and rng.random() < stay:
            label = last_label[speaker]
        elif previous is not None and rng.random() < contagion:
            label = previous
        else:
            label = int(rng.choice(len(CLASS_PRIOR), p=CLASS_PRIOR))
        last_label[speaker] = previous = label
        features = {}
        for m, mu in means.items():
            signal = mu[label] if rng.random() >= dropout else 0.0
            noise = rng.standard_normal(mu.shape[1])
            features[m] = (signal + offsets[m][speaker] + noise).astype(np.float32)
        utterances.append(Utterance(speaker=SPEAKERS[speaker], label=label, features=features))
    return Dialogue(dialogue_id, utterances)
