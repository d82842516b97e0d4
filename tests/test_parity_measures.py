"""The spike-agreement measures of PARITY.json (``neuro_erc.export.spike_measures``)."""
import numpy as np
import pytest

from neuro_erc.export import SpikeCounts, SpikeTally


def test_an_all_silent_run_scores_high_agreement_but_zero_jaccard():
    """Why agreement alone misleads: silence agrees with every silent neuron-step of the reference."""
    reference = np.random.default_rng(0).random((32, 256, 24)) < 0.12
    counts = SpikeCounts.of(reference, np.zeros_like(reference))
    rate = reference.mean()
    assert 0.11 < rate < 0.13
    assert counts.agreement == pytest.approx(1 - rate) and counts.agreement > 0.87
    assert counts.jaccard == 0 and counts.mismatches_per_spike == 1
    assert (counts.rate_reference, counts.rate_other) == (pytest.approx(rate), 0)


def test_measures_count_by_hand():
    counts = SpikeCounts.of(np.array([1, 1, 0, 0, 1]), np.array([1, 0, 1, 0, 1]))
    assert (counts.n, counts.both, counts.ref_only, counts.other_only) == (5, 2, 1, 1)
    assert counts.agreement == pytest.approx(3 / 5) and counts.jaccard == pytest.approx(2 / 4)
    assert (counts.rate_reference, counts.rate_other) == (pytest.approx(3 / 5), pytest.approx(3 / 5))
    assert counts.mismatches == 2 and counts.mismatches_per_spike == pytest.approx(2 / 3)


def test_identical_and_undefined_cases():
    spikes = np.array([[0, 1], [1, 0]])
    same = SpikeCounts.of(spikes, spikes)
    assert (same.agreement, same.jaccard, same.mismatches_per_spike) == (1, 1, 0)
    silent = SpikeCounts.of(np.zeros(4), np.zeros(4))
    assert silent.agreement == 1 and silent.jaccard is None and silent.mismatches_per_spike is None
    extra = SpikeCounts.of(np.zeros(4), np.array([0, 1, 0, 0]))  # spikes only in the other run
    assert extra.jaccard == 0 and extra.mismatches_per_spike is None
    with pytest.raises(ValueError, match="shapes"):
        SpikeCounts.of(np.zeros(3), np.zeros(4))


def test_tally_sums_dialogues_and_reports_every_measure_per_node():
    tally = SpikeTally()
    first = tally.add({"a": np.array([1, 0]), "b": np.array([1, 1])}, {"a": np.array([1, 0]), "b": np.array([0, 1])}, "t:")
    tally.add({"a": np.array([0, 1]), "b": np.array([0, 0])}, {"a": np.array([0, 0]), "b": np.array([0, 0])}, "t:")
    assert (first.n, first.both, first.ref_only, first.other_only) == (4, 2, 1, 0)
    report = tally.report(reference="norse", other="lava")
    measures = ("spike_agreement", "spike_jaccard", "firing_rate_norse", "firing_rate_lava", "mismatches_per_spike",
                "spike_mismatches")
    assert set(report) == {*measures, *(f"{m}_by_node" for m in measures)}
    assert report["spike_mismatches"] == 2 and report["spike_agreement"] == pytest.approx(6 / 8)
    assert report["spike_jaccard"] == pytest.approx(2 / 4) and report["mismatches_per_spike"] == pytest.approx(2 / 4)
    assert report["firing_rate_norse"] == pytest.approx(4 / 8) and report["firing_rate_lava"] == pytest.approx(2 / 8)
    assert report["spike_jaccard_by_node"] == {"t:a": pytest.approx(1 / 2), "t:b": pytest.approx(1 / 2)}
    assert report["spike_mismatches_by_node"] == {"t:a": 1, "t:b": 1}
