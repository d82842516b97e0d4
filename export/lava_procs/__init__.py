r"""Three Lava processes the export needs, with their CPU models (Lava-style layout: processes in
``process.py``, models in ``models.py``; Lava's compiler scans a process's folder for its
models, so this folder holds nothing else).

**Windows.** A Lava network runs one dialogue per *period* of ``T + latency`` steps; a unit
``hop`` synapses from the input computes Norse step t at step ``hop + t`` of the period (every
Lava synapse delays by one step). Each unit is *live* during its window — steps hop+1 …
hop+T — starts it from rest and is silent outside it. Dialogues then stream back to back
through one compiled network: no state needs resetting from the host (Lava moves Var data one
element per message, ~25 µs each), no spike of one dialogue reaches the next, and a unit's bias
acts only in its window, so it can live in the neuron.

* ``BoxLIF`` (float): Norse's box-LIF step, bit for bit. Lava's own ``LIF`` float model
  computes ``v(1 − dv) + u + bias`` in float64 — Norse's ``v + a·(I + v_leak − v)`` in exact
  arithmetic, but not in float32: when the input is an integer count (the SDSA context sums
  K∧V over utterances) Norse's voltage often lands *exactly* on the threshold after rounding
  (``0.1f·5 = 0.5``) while the float64 one does not. ``BoxLIF`` keeps per-neuron Norse
  parameters and does Norse's float32 operations in Norse's order:

  .. math::
      I = \mathrm{fl32}(a_{in} + b), \quad v \leftarrow v + a\,((r I + v_{leak}) - v), \quad
      z = \Theta(v - v_{th}), \quad v \leftarrow v_{reset}\ \text{where}\ z = 1

  and ``z = Θ(I − v_th)`` for memoryless units (NIR ``Threshold`` nodes, relays). ``a_in`` is the
  float64 sum of the ``Sparse`` outputs and ``b`` the float64 bias: for the exported weights both
  are exact and so is their sum (``neuro_erc.export.exact_sums``), so ``I`` is the real current
  rounded once — the float32 number Norse's exported network computes.
* ``CubaLIF`` (float): NIR's CubaLIF in Norse's float32 order (``neuro_erc.export.nir_sim``),
  per-neuron τ_syn; with ``voltage_out`` an LI (no synaptic memory, no threshold) that sends its
  voltage — the stream export's context neurons and readout.
* **Streams** (``carry``): a period is one utterance; units hold their state outside their
  window and restart from rest only in the first period from ``origin``, which the host sets
  (one scalar per process) when a new dialogue begins.
* ``WindowedLIF``: Lava's ``LIF`` (float and bit-accurate fixed-point models unchanged) plus
  the window — Lava's ``LIFReset`` resets a whole process at one step; this resets each
  neuron at its own.
"""
