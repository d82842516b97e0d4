r"""How far two runs' spikes agree, over (neuron, step) pairs: a reference run and another one.

With n neuron-steps, ``both`` spikes in both runs, ``ref_only`` / ``other_only`` spikes in one:

.. math::
    \text{agreement} &= (n - \text{ref\_only} - \text{other\_only}) / n \\
    \text{Jaccard} &= \text{both} / (\text{both} + \text{ref\_only} + \text{other\_only}) \\
    \text{firing rate} &= \text{spikes} / n, \qquad
    \text{mismatches per spike} = (\text{ref\_only} + \text{other\_only}) / \text{reference spikes}

Agreement counts both-silent pairs as agreeing, so it rewards silence: an all-silent run scores
1 − (the reference's firing rate), 0.88 against a network firing at 0.12. Jaccard counts only
spikes (0 for an all-silent run, 1 only for identical spikes); mismatches per spike says how
many errors there are per reference spike. Jaccard is undefined (``None``) when neither run
spikes, mismatches per spike when the reference does not.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np


@dataclass
class SpikeCounts:
    """Counts over neuron-steps: ``n`` in all, ``both`` spiking in both runs, ``ref_only``, ``other_only``."""

    n: int = 0
    both: int = 0
    ref_only: int = 0
    other_only: int = 0

    @classmethod
    def of(cls, reference: np.ndarray, other: np.ndarray) -> "SpikeCounts":
        ref, oth = np.asarray(reference) != 0, np.asarray(other) != 0
        if ref.shape != oth.shape:
            raise ValueError(f"spike arrays of shapes {ref.shape} and {oth.shape} do not compare")
        return cls(ref.size, int(np.count_nonzero(ref & oth)), int(np.count_nonzero(ref & ~oth)),
                   int(np.count_nonzero(oth & ~ref)))

    def __iadd__(self, other: "SpikeCounts") -> "SpikeCounts":
        self.n, self.both = self.n + other.n, self.both + other.both
        self.ref_only, self.other_only = self.ref_only + other.ref_only, self.other_only + other.other_only
        return self

    @property
    def mismatches(self) -> int:
        return self.ref_only + self.other_only

    @property
    def agreement(self) -> float:
        return 1 - self.mismatches / self.n if self.n else float("nan")

    @property
    def jaccard(self) -> float | None:
        either = self.both + self.mismatches
        return self.both / either if either else None

    @property
    def rate_reference(self) -> float:
        return (self.both + self.ref_only) / self.n if self.n else float("nan")

    @property
    def rate_other(self) -> float:
        return (self.both + self.other_only) / self.n if self.n else float("nan")

    @property
    def mismatches_per_spike(self) -> float | None:
        spikes = self.both + self.ref_only
        return self.mismatches / spikes if spikes else None

    def measures(self, reference: str, other: str) -> dict[str, float | int | None]:
        """The measures under PARITY.json's names, e.g. ``firing_rate_norse`` for ``reference="norse"``."""
        return {"spike_agreement": self.agreement, "spike_jaccard": self.jaccard,
                f"firing_rate_{reference}": self.rate_reference, f"firing_rate_{other}": self.rate_other,
                "mismatches_per_spike": self.mismatches_per_spike, "spike_mismatches": self.mismatches}


class SpikeTally:
    """Running :class:`SpikeCounts` of two runs' spike dicts ``{node: spikes}``, overall and per node."""

    def __init__(self):
        self.total = SpikeCounts()
        self.by_node: dict[str, SpikeCounts] = defaultdict(SpikeCounts)

    def add(self, reference: dict[str, np.ndarray], other: dict[str, np.ndarray], prefix: str = "") -> SpikeCounts:
        """Count one dialogue (every node of ``reference``); return its counts."""
        dialogue = SpikeCounts()
        for name, ref in reference.items():
            counts = SpikeCounts.of(ref, other[name])
            self.by_node[prefix + name] += counts
            dialogue += counts
        self.total += dialogue
        return dialogue

    def report(self, reference: str, other: str) -> dict:
        """:meth:`SpikeCounts.measures` overall, and per node as ``<measure>_by_node`` (nodes sorted)."""
        report = self.total.measures(reference, other)
        per_node = {name: self.by_node[name].measures(reference, other) for name in sorted(self.by_node)}
        for key in report.copy():
            report[f"{key}_by_node"] = {name: m[key] for name, m in per_node.items()}
        return report
