"""Exported cores as ``lava-run`` inputs: the artefact of ``export lava`` or ``export nir``, checked
against the checkpoint it is run with.

An artefact is exported for dialogues of L utterances and runs every dialogue of up to L
(:func:`~.lava_build.restrict_plan` cuts the network for a shorter one out of it, exactly);
longer dialogues are refused. It records, per core, T and the core's
:func:`~.nir_graph.core_fingerprint`, so that pairing it with another checkpoint — whose host
parts would feed it inputs it was not trained on — is refused, saying what differs.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from neuro_erc.errors import ExportError
from neuro_erc.snn.core import SpikingCore

from .lava_build import LavaPlan, build_plan, load_plans, restrict_plan
from .nir_graph import core_fingerprint, load_graph

ARTEFACTS = ("checkpoint", "plan", "nir")  # what a parity report says it ran


@dataclass(frozen=True)
class ExportedCores:
    """The Lava plans of an artefact, one per modality, for dialogues of up to ``length`` utterances.

    Fields:
        kind: ``"plan"`` (a directory from ``export lava``) or ``"nir"`` (a file from ``export nir``).
        path: where it was read.
        plans: modality → the plan for the artefact's dialogue length.
    """

    kind: str
    path: Path
    plans: dict[str, LavaPlan]

    def __post_init__(self) -> None:
        if self.kind not in ARTEFACTS[1:]:
            raise ValueError(f"kind must be one of {ARTEFACTS[1:]}, got {self.kind!r}")
        unsized = [m for m, plan in self.plans.items() if plan.dialogue_length is None]
        if not self.plans or unsized:
            raise ExportError(f"{self.path}: cores {unsized or 'none'} are not cores exported by neuro-erc "
                              "(no dialogue length in the (channels, utterances) layout)")

    @classmethod
    def load(cls, kind: str, path: str | Path) -> "ExportedCores":
        plans = load_plans(path) if kind == "plan" else {m: build_plan(g) for m, g in load_graph(path).items()}
        return cls(kind, Path(path), plans)

    @property
    def length(self) -> int:
        """The longest dialogue every core of the artefact runs."""
        return min(plan.dialogue_length for plan in self.plans.values())

    def check(self, cores: Mapping[str, SpikingCore]) -> None:
        """Refuse to run with ``cores`` (the checkpoint's) unless they are the ones exported."""
        differs = []
        if set(self.plans) != set(cores):
            differs.append(f"it holds cores for modalities {sorted(self.plans)}, the checkpoint {sorted(cores)}")
        for m in sorted(set(self.plans) & set(cores)):
            plan, core = self.plans[m], cores[m]
            if plan.T != core.cfg.T:
                differs.append(f"core {m!r} runs T={plan.T} steps, the checkpoint's T={core.cfg.T}")
            elif plan.fingerprint != core_fingerprint(core):
                differs.append(f"core {m!r} has other weights or neurons (fingerprint {plan.fingerprint[:12] or 'none'}, "
                               f"the checkpoint's {core_fingerprint(core)[:12]})")
        if differs:
            raise ExportError(f"{self.path} was not exported from this checkpoint: {'; '.join(differs)}")

    def check_lengths(self, lengths: Iterable[int]) -> None:
        """Refuse dialogues longer than the artefact's L (the caller skips them or exports a longer one)."""
        longer = [n for n in lengths if n > self.length]
        if longer:
            raise ExportError(f"{len(longer)} dialogue(s) have more than the L={self.length} utterances {self.path} was "
                              f"exported for (longest {max(longer)}): skip them with --max-length {self.length}, or "
                              f"export with --length {max(longer)}")

    def plan(self, modality: str, length: int) -> LavaPlan:
        """The plan of ``modality``'s core for a dialogue of ``length`` ≤ L utterances."""
        return restrict_plan(self.plans[modality], length)
