"""Run a :class:`~neuro_erc.export.lava_build.LavaPlan` on Lava's CPU simulator (``Loihi2SimCfg``).

One neuron process per group, one ``Sparse`` process per connection and one ``Extractor`` per
group (spikes stream to the host one array per step): a dozen OS processes whatever the core's
size. Neuron models:

* ``precision="float"``, ``neuron="box"`` (default): :class:`~.lava_procs.process.BoxLIF`, Norse's
  step in float32, fed by Lava's float ``Sparse`` (``PySparseModelFloat``: ``weights.dot(s_in)``
  in float64). For the exported weights every float64 sum of spikes is exact, and BoxLIF rounds
  ``a_in + bias`` to float32 once (:mod:`.exact_sums`), so each current is the one Norse's
  :func:`~.norse_ref.exported_core` computes — spike-exact against it given the host's input
  current (``run(currents=...)``);
* ``precision="float"``, ``neuron="lif"``: Lava's standard ``LIF`` floating-point model;
* ``precision="fixed"``: Lava's standard ``LIF``/``Sparse`` bit-accurate Loihi models.

Lava's LIF runs as :class:`~.lava_procs.process.WindowedLIF` (its own models plus a per-neuron
reset schedule). The network is compiled once per plan (one dialogue length) and reused, one
period of ``T + latency`` steps per dialogue; a node at hop h computes Norse step t at step
t + h of the period, and :meth:`LavaCore.run` undoes the shift so spikes line up with Norse's.
Units restart from rest at the start of their window by themselves, so between dialogues only
the input group's bias (the analog input's current: the host's, see :meth:`LavaCore.run`) is
written — Lava moves Var data one element per message (~25 µs each), so that group is kept
small (D·L neurons).

**Streams** (``carry=True``, :mod:`.lava_stream`): each period is one utterance instead of one
dialogue; units hold their state between windows instead of restarting, and restart only when
:meth:`LavaCore.restart` marks the next period as a new dialogue (one scalar per process is
written). CubaLIF and LI groups run as :class:`~.lava_procs.process.CubaLIF` (float only); the
LI's population comes back as its voltage, not as spikes.

Lava needs Python 3.10 (lava-nc 0.10 / lava-dl 0.6); :func:`require_lava` says so clearly.
"""
from __future__ import annotations

import multiprocessing
import sys

import numpy as np

from neuro_erc.errors import BackendUnavailable

from .lava_build import LavaPlan, lava_lif_network, quantize

PRECISIONS = ("float", "fixed")
NEURONS = ("box", "lif")


class LavaUnavailable(BackendUnavailable):
    """Lava does not import here (it needs Python 3.10)."""


def require_lava() -> None:
    """Raise :class:`LavaUnavailable` with the reason when Lava cannot be imported here."""
    if multiprocessing.get_start_method(allow_none=True) == "fork":
        # Anything that made a multiprocessing lock (tqdm's progress bars do) has fixed the
        # default context; Lava's import then calls set_start_method("fork") without force
        # and fails with "context has already been set". Lava wants "fork" too: unset it.
        multiprocessing.set_start_method(None, force=True)
    try:
        import lava.magma.core.run_configs  # noqa: F401
        import lava.proc.lif.process  # noqa: F401
    except Exception as err:  # ImportError without the package; ValueError from its dataclasses on Python >= 3.11
        version = ".".join(map(str, sys.version_info[:3]))
        raise LavaUnavailable(
            f"Lava (lava-nc 0.10, lava-dl 0.6) does not import on Python {version}: {type(err).__name__}: {err}. "
            "Lava needs Python 3.10: use the project's 3.10 venv (pip install 'neuro-erc[lava]')."
        ) from err


def lava_available() -> bool:
    try:
        require_lava()
    except LavaUnavailable:
        return False
    return True


class LavaCore:
    """The Lava network of one plan; use as a context manager (``close`` stops the runtime)."""

    def __init__(self, plan: LavaPlan, precision: str = "float", neuron: str = "box", carry: bool = False):
        if precision not in PRECISIONS or neuron not in NEURONS:
            raise ValueError(f"precision must be one of {PRECISIONS} and neuron one of {NEURONS}; got {precision!r}, {neuron!r}")
        if precision == "fixed":
            neuron = "lif"  # fixed point is Lava's bit-accurate LIF
        if carry and neuron != "box":
            raise ValueError("carry (streaming) runs with the float BoxLIF/CubaLIF models only (precision 'float', neuron 'box')")
        require_lava()
        from lava.proc.io.extractor import Extractor
        from lava.proc.sparse.process import Sparse

        self.plan, self.precision, self.neuron, self.carry = plan, precision, neuron, carry
        self.steps_run, self.compiled = 0, 0  # compiled: how often a run compiled the network (once, when reused)
        self.lif = lava_lif_network(plan) if neuron == "lif" else None
        self.fixed = quantize(plan, self.lif) if precision == "fixed" else None
        self.neurons = {name: self._neuron_process(name) for name in plan.groups}
        self.taps = {}
        for name, proc in self.neurons.items():
            self.taps[name] = Extractor(shape=(plan.groups[name].size,), buffer_size=plan.steps)
            proc.s_out.connect(self.taps[name].in_port)
        for i, c in enumerate(plan.connections):
            if self.fixed:
                syn = Sparse(weights=self.fixed.weights[i], weight_exp=self.fixed.weight_exps[i], num_message_bits=1)
            else:
                syn = Sparse(weights=self.lif.weights[i] if self.lif else c.weights, num_message_bits=1)
            self.neurons[c.src].s_out.connect(syn.s_in)
            syn.a_out.connect(self.neurons[c.dst].a_in)
        self._started = False

    def _neuron_process(self, name: str):
        g = self.plan.groups[name]
        window = dict(hop=g.hop, period=self.plan.steps, window=self.plan.T, name=name)
        if g.kind != "box":
            from .lava_procs.process import CubaLIF

            return CubaLIF(shape=(g.size,), bias=np.zeros(g.size), decay=np.full(g.size, g.decay), syn_decay=g.syn_decay,
                           syn_gain=g.syn_gain, r=g.r, v_leak=g.v_leak, v_rest=g.v_leak if g.kind == "cuba" else np.zeros(g.size),
                           v_th=g.v_th, v_reset=g.v_reset, voltage_out=g.kind == "li", carry=self.carry, **window)
        if self.neuron == "box":
            from .lava_procs.process import BoxLIF

            return BoxLIF(shape=(g.size,), bias=np.zeros(g.size), decay=np.full(g.size, g.decay), r=g.r, v_leak=g.v_leak,
                          v_th=g.v_th, v_reset=g.v_reset, memoryless=np.full(g.size, g.memoryless), carry=self.carry, **window)
        from .lava_procs.process import WindowedLIF

        if self.fixed:
            fg = self.fixed.groups[name]
            return WindowedLIF(shape=(g.size,), v_rest=fg.v_init, u=0, du=fg.du, dv=fg.dv, vth=fg.vth, bias_mant=0, bias_exp=0, **window)
        lg = self.lif.groups[name]
        return WindowedLIF(shape=(g.size,), v_rest=lg.v_init, u=0.0, du=1.0, dv=lg.dv, vth=1.0, bias_mant=0.0, bias_exp=0, **window)

    def _run_config(self):
        from lava.magma.core.run_configs import Loihi2SimCfg
        from lava.proc.io.extractor import Extractor, PyLoihiExtractorModel
        from lava.proc.sparse.models import PySparseModelBitAcc, PySparseModelFloat
        from lava.proc.sparse.process import Sparse

        from .lava_procs import models
        from .lava_procs.process import BoxLIF, CubaLIF, WindowedLIF

        lif_model = models.PyWindowedLifModelBitAcc if self.fixed else models.PyWindowedLifModelFloat
        return Loihi2SimCfg(select_tag="fixed_pt" if self.fixed else "floating_pt", exception_proc_model_map={
            Extractor: PyLoihiExtractorModel,  # Lava's Extractor models carry no tag
            Sparse: PySparseModelBitAcc if self.fixed else PySparseModelFloat,  # float64 sums: exact (see above)
            BoxLIF: models.PyBoxLIFModel, CubaLIF: models.PyCubaLIFModel, WindowedLIF: lif_model})

    def _bias(self, x, currents, groups) -> dict[str, dict[str, np.ndarray]]:
        """Group -> {Var: value}: the neurons' bias for a dialogue (``LavaPlan.dialogue_bias``)."""
        bias = self.plan.dialogue_bias(x, currents)
        if self.lif:
            bias = self.lif.bias(bias)
        values = {}
        for name in groups:
            if self.fixed:
                mant, exp = self.fixed.bias({name: bias[name]})[name]
                values[name] = {"bias_mant": mant, "bias_exp": exp}
            else:
                values[name] = {"bias" if self.neuron == "box" or self.plan.groups[name].kind != "box" else "bias_mant": bias[name]}
        return values

    def run(self, x: np.ndarray | None = None, currents: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """Spikes ``{node: bool [T, *shape]}`` of every spiking NIR node for one dialogue (a stream:
        one utterance); an LI node's voltage ``float32 [T, *shape]``.

        ``currents`` (``{input-driven node: float32 [C, L]}``, :func:`~.norse_ref.dialogue_currents`)
        are the host's input currents, which make the run spike-exact against Norse; without them
        the current is computed here from the analog input ``x`` (in float64: not always Norse's
        float32 number, see ``LavaPlan.dialogue_bias``).
        """
        from lava.magma.core.run_conditions import RunSteps

        for name, values in self._bias(x, currents, self.plan.input_groups if self._started else self.plan.groups).items():
            for var, value in values.items():
                if self._started:
                    getattr(self.neurons[name], var).set(np.asarray(value, dtype=float))
                else:
                    getattr(self.neurons[name], var).init = value
        steps = self.plan.steps
        self.compiled += not self._started
        next(iter(self.neurons.values())).run(condition=RunSteps(num_steps=steps), run_cfg=self._run_config())
        self._started = True
        self.steps_run += steps
        raster = {name: np.stack([tap.receive() for _ in range(steps)]) for name, tap in self.taps.items()}
        T = self.plan.T

        def values(p):
            window = raster[p.group][p.hop: p.hop + T, p.offset: p.offset + p.size].reshape(T, *p.shape)
            return window.astype(np.float32) if self.plan.groups[p.group].kind == "li" else window != 0

        return {p.name: values(p) for p in self.plan.node_populations()}

    def restart(self) -> None:
        """Start a new dialogue at the next :meth:`run` (``carry``): every unit restarts from rest
        at its first window from here on. Writes one scalar per neuron process; recompiles nothing."""
        if not self.carry:
            raise ValueError("restart() is for streams (carry=True); without carry every run starts from rest")
        if self._started:
            for proc in self.neurons.values():
                proc.origin.set(np.array([self.steps_run]))

    def output(self, spikes: dict[str, np.ndarray]) -> np.ndarray:
        """The graph's Output (the sum of its spiking sources) from :meth:`run`'s spikes."""
        return sum(spikes[name].astype(np.float32) for name in self.plan.outputs)

    def close(self) -> None:
        if self._started:
            next(iter(self.neurons.values())).stop()
            self._started = False

    def __enter__(self) -> "LavaCore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
