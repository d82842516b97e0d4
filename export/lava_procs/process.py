"""``BoxLIF``, ``CubaLIF`` and ``WindowedLIF`` processes (see the package docstring)."""
from __future__ import annotations

from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var
from lava.proc.lif.process import LIF


def _window_vars(proc, shape, hop, period, window, carry=False) -> None:
    """The window schedule; ``carry``: state carries from period to period (a stream), restarting
    only at the period that begins at step ``origin`` (the host sets it for each new dialogue)."""
    proc.hop = Var(shape=shape, init=hop)
    proc.period = Var(shape=(1,), init=period)
    proc.window = Var(shape=(1,), init=window)
    proc.carry = Var(shape=(1,), init=bool(carry))
    proc.origin = Var(shape=(1,), init=0)


class BoxLIF(AbstractProcess):
    """Norse box-LIF / threshold units with per-neuron parameters (arrays of ``shape``)."""

    def __init__(self, *, shape, bias, decay, r, v_leak, v_th, v_reset, memoryless, hop, period, window, carry=False,
                 name=None):
        super().__init__(shape=shape, name=name)
        self.a_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.v = Var(shape=shape, init=v_leak)
        self.bias = Var(shape=shape, init=bias)
        self.decay = Var(shape=shape, init=decay)
        self.r = Var(shape=shape, init=r)
        self.v_leak = Var(shape=shape, init=v_leak)
        self.v_th = Var(shape=shape, init=v_th)
        self.v_reset = Var(shape=shape, init=v_reset)
        self.memoryless = Var(shape=shape, init=memoryless)
        _window_vars(self, shape, hop, period, window, carry)


class CubaLIF(AbstractProcess):
    """NIR CubaLIF units in Norse's float32 order (per-neuron parameters); with ``voltage_out``
    (NIR LI: syn_decay = syn_gain = 1, v_th = inf) they send their voltage instead of spikes."""

    def __init__(self, *, shape, bias, decay, syn_decay, syn_gain, r, v_leak, v_rest, v_th, v_reset, voltage_out, hop,
                 period, window, carry=False, name=None):
        super().__init__(shape=shape, name=name)
        self.a_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.v = Var(shape=shape, init=v_rest)
        self.i = Var(shape=shape, init=0.0)
        self.bias = Var(shape=shape, init=bias)
        self.decay = Var(shape=shape, init=decay)
        self.syn_decay = Var(shape=shape, init=syn_decay)
        self.syn_gain = Var(shape=shape, init=syn_gain)
        self.r = Var(shape=shape, init=r)
        self.v_leak = Var(shape=shape, init=v_leak)
        self.v_rest = Var(shape=shape, init=v_rest)
        self.v_th = Var(shape=shape, init=v_th)
        self.v_reset = Var(shape=shape, init=v_reset)
        self.voltage_out = Var(shape=(1,), init=bool(voltage_out))
        _window_vars(self, shape, hop, period, window, carry)


class WindowedLIF(LIF):
    """Lava's ``LIF`` whose neurons restart from ``v_rest`` (and u = 0) at their window start."""

    def __init__(self, *, shape, v_rest, hop, period, window, **lif):
        super().__init__(shape=shape, v=v_rest, **lif)
        self.v_rest = Var(shape=shape, init=v_rest)
        _window_vars(self, shape, hop, period, window)
