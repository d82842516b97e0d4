"""CPU models of ``BoxLIF`` and ``CubaLIF`` (float32, Norse's steps) and ``WindowedLIF`` (Lava's LIF dynamics + windows).

The ``WindowedLIF`` models build on Lava's abstract LIF models, which hold the sub-threshold
dynamics and the reset (Lava forbids subclassing its concrete, decorated models); the few
lines its concrete ``PyLifModelFloat``/``PyLifModelBitAcc`` add — port and threshold types, the
threshold test, the bit-accurate threshold shift — are restated here unchanged.
"""
from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol
from lava.proc.lif.models import AbstractPyLifModelFixed, AbstractPyLifModelFloat

from neuro_erc.export.lava_procs.process import BoxLIF, CubaLIF, WindowedLIF

F32 = np.float32


class _Window:
    """``(live, start)`` masks of each neuron at the current step (see the package docstring):
    live in steps hop+1 … hop+T of every period; restarting at each period, or with ``carry``
    only at the first period from ``origin`` (a new dialogue)."""

    hop: np.ndarray = LavaPyType(np.ndarray, int)
    period: np.ndarray = LavaPyType(np.ndarray, int)
    window: np.ndarray = LavaPyType(np.ndarray, int)
    carry: np.ndarray = LavaPyType(np.ndarray, bool)
    origin: np.ndarray = LavaPyType(np.ndarray, int)

    def window_masks(self) -> tuple[np.ndarray, np.ndarray]:
        since = self.time_step - 1 - self.hop - int(self.origin[0])
        local = since % int(self.period[0])
        return local < int(self.window[0]), (since == 0) if self.carry[0] else (local == 0)

    def idle(self, before: np.ndarray, rest: np.ndarray) -> np.ndarray:
        """A state outside the window: held (``carry``) or at rest."""
        return before if self.carry[0] else rest


@implements(proc=BoxLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyBoxLIFModel(_Window, PyLoihiProcessModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    v: np.ndarray = LavaPyType(np.ndarray, F32)
    bias: np.ndarray = LavaPyType(np.ndarray, float)
    decay: np.ndarray = LavaPyType(np.ndarray, F32)
    r: np.ndarray = LavaPyType(np.ndarray, F32)
    v_leak: np.ndarray = LavaPyType(np.ndarray, F32)
    v_th: np.ndarray = LavaPyType(np.ndarray, F32)
    v_reset: np.ndarray = LavaPyType(np.ndarray, F32)
    memoryless: np.ndarray = LavaPyType(np.ndarray, bool)

    def run_spk(self) -> None:
        current = (self.a_in.recv() + self.bias).astype(F32)  # exact float64 sum, rounded once
        live, start = self.window_masks()
        rest = self.v_leak.astype(F32)
        before = np.where(start, rest, self.v.astype(F32))
        leaky = before + self.decay.astype(F32) * ((self.r.astype(F32) * current + rest) - before)
        v = np.where(self.memoryless, current, leaky).astype(F32)
        spikes = ((v - self.v_th.astype(F32)) > 0) & live
        self.v[:] = np.where(spikes, self.v_reset.astype(F32), np.where(live, v, self.idle(before, rest)))
        self.s_out.send(spikes.astype(float))


@implements(proc=CubaLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyCubaLIFModel(_Window, PyLoihiProcessModel):
    """Norse's ``lif_feed_forward_step`` on the current κ·w_in·I, in its float32 order
    (``neuro_erc.export.nir_sim``'s ``CubaLIF``): ``i' = i + g I``, ``v ← v + a((v_leak − v) + r i')``,
    ``i ← i' + (−a_syn) i'``, spike and reset; an LI (``voltage_out``) sends v."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    v: np.ndarray = LavaPyType(np.ndarray, F32)
    i: np.ndarray = LavaPyType(np.ndarray, F32)
    bias: np.ndarray = LavaPyType(np.ndarray, float)
    decay: np.ndarray = LavaPyType(np.ndarray, F32)
    syn_decay: np.ndarray = LavaPyType(np.ndarray, F32)
    syn_gain: np.ndarray = LavaPyType(np.ndarray, F32)
    r: np.ndarray = LavaPyType(np.ndarray, F32)
    v_leak: np.ndarray = LavaPyType(np.ndarray, F32)
    v_rest: np.ndarray = LavaPyType(np.ndarray, F32)
    v_th: np.ndarray = LavaPyType(np.ndarray, F32)
    v_reset: np.ndarray = LavaPyType(np.ndarray, F32)
    voltage_out: np.ndarray = LavaPyType(np.ndarray, bool)

    def run_spk(self) -> None:
        current = (self.a_in.recv() + self.bias).astype(F32)  # exact float64 sum, rounded once
        live, start = self.window_masks()
        rest, zero = self.v_rest.astype(F32), np.zeros_like(current)
        v0, i0 = np.where(start, rest, self.v.astype(F32)), np.where(start, zero, self.i.astype(F32))
        i1 = (i0 + self.syn_gain.astype(F32) * current).astype(F32)
        v1 = (v0 + self.decay.astype(F32) * ((self.v_leak.astype(F32) - v0) + self.r.astype(F32) * i1)).astype(F32)
        i2 = (i1 + (-self.syn_decay.astype(F32)) * i1).astype(F32)
        spikes = ((v1 - self.v_th.astype(F32)) > 0) & live
        self.v[:] = np.where(spikes, self.v_reset.astype(F32), np.where(live, v1, self.idle(v0, rest)))
        self.i[:] = np.where(live, i2, self.idle(i0, zero))
        self.s_out.send(np.where(live, v1, 0.0) if self.voltage_out[0] else spikes.astype(float))


class _WindowedLifMixin(_Window):
    """Lava's LIF step (``subthr_dynamics``, ``spiking_activation``, ``reset_voltage``) inside the window."""

    def windowed_step(self, a_in: np.ndarray) -> None:
        live, start = self.window_masks()
        self.v[start] = self.v_rest[start]
        self.u[start] = 0
        self.subthr_dynamics(activation_in=a_in)
        spikes = self.spiking_activation() & live
        self.reset_voltage(spike_vector=spikes)
        self.v[~live] = self.v_rest[~live]
        self.u[~live] = 0
        self.s_out.send(spikes)


@implements(proc=WindowedLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyWindowedLifModelFloat(_WindowedLifMixin, AbstractPyLifModelFloat):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    vth: float = LavaPyType(float, float)
    v_rest: np.ndarray = LavaPyType(np.ndarray, float)

    def spiking_activation(self) -> np.ndarray:
        return self.v > self.vth

    def run_spk(self) -> None:
        self.windowed_step(self.a_in.recv())


@implements(proc=WindowedLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("bit_accurate_loihi", "fixed_pt")
class PyWindowedLifModelBitAcc(_WindowedLifMixin, AbstractPyLifModelFixed):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    vth: int = LavaPyType(int, np.int32, precision=17)
    v_rest: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.effective_vth = 0

    def scale_threshold(self) -> None:
        self.effective_vth = np.left_shift(self.vth, self.vth_shift)  # Loihi MSB-aligns vth by 6 bits
        self.isthrscaled = True

    def spiking_activation(self) -> np.ndarray:
        return self.v > self.effective_vth

    def run_spk(self) -> None:
        a_in = self.a_in.recv()
        self.scale_bias()
        if not self.isthrscaled:
            self.scale_threshold()
        self.windowed_step(a_in)
