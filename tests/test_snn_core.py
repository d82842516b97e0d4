"""The spiking core: shapes, padding, BN folding, gradients, analog input, firing rates, describe()."""
import pytest
import torch

from neuro_erc.snn import LIF, CoreConfig, SpikingCore

VARIANTS = ["sdsa", "ssa"]


def make_core(attention: str, dim=16, T=8, in_dim=6, **kw) -> SpikingCore:
    torch.manual_seed(0)
    return SpikingCore(in_dim, CoreConfig(dim=dim, heads=4, depth=2, mlp_ratio=2, T=T, attention=attention, **kw)).double()


def trained_eval(core: SpikingCore, in_dim=6) -> SpikingCore:
    """A few training-mode forwards so the BN running statistics are not the defaults, then eval."""
    for seed in range(3):
        g = torch.Generator().manual_seed(seed)
        core(torch.randn(7, 3, in_dim, generator=g, dtype=torch.float64), torch.ones(7, 3, dtype=torch.bool))
    return core.eval()


def record_spikes(core: SpikingCore) -> tuple[dict[str, torch.Tensor], list]:
    """Forward hooks on every LIF module: what a spike counter sees."""
    seen: dict[str, torch.Tensor] = {}
    handles = [m.register_forward_hook(lambda mod, inp, out, n=name: seen.__setitem__(n, out))
               for name, m in core.named_modules() if isinstance(m, LIF)]
    return seen, handles


@pytest.mark.parametrize("attention", VARIANTS)
def test_shapes_and_padding_zero(attention):
    core = make_core(attention)
    mask = torch.tensor([[True] * 3] * 4 + [[True, False, False]])  # L=5, B=3
    out = core(torch.randn(5, 3, 6, dtype=torch.float64), mask)
    assert out.shape == (8, 5, 3, 16)
    assert out[:, ~mask].abs().sum() == 0
    assert torch.equal(out, out.round()) and out.min() >= 0  # integer residual stream


@pytest.mark.parametrize("attention", VARIANTS)
def test_padding_changes_nothing_for_real_utterances(attention):
    """A dialogue alone, batched with a longer one, and with extra padding: identical spikes."""
    core = trained_eval(make_core(attention))
    g = torch.Generator().manual_seed(1)
    short = torch.randn(3, 1, 6, generator=g, dtype=torch.float64)
    longer = torch.randn(6, 1, 6, generator=g, dtype=torch.float64)
    alone = (short, torch.ones(3, 1, dtype=torch.bool))
    batched = (torch.cat([torch.cat([short, torch.zeros(3, 1, 6, dtype=torch.float64)]), longer], dim=1),
               torch.tensor([[True, True]] * 3 + [[False, True]] * 3))
    padded = (torch.cat([short, torch.full((4, 1, 6), 7.0, dtype=torch.float64)]),  # junk at padding
              torch.tensor([[True]] * 3 + [[False]] * 4))
    runs = []
    for x, mask in (alone, batched, padded):
        seen, handles = record_spikes(core)
        with torch.no_grad():
            out = core(x, mask)
        for h in handles:
            h.remove()
        runs.append((out, seen))
    (out0, seen0), rest = runs[0], runs[1:]
    for out, seen in rest:
        assert torch.equal(out[:, :3, :1], out0)
        for name, spikes in seen0.items():
            L = spikes.shape[1]  # 1 for the SDSA context LIF, 3 otherwise
            assert torch.equal(seen[name][:, :L, :1], spikes), name
    assert out0.sum() > 0 and seen0["encoder.lif"].sum() > 0


@pytest.mark.parametrize("attention", VARIANTS)
def test_folded_batchnorm_gives_identical_spikes(attention):
    core = trained_eval(make_core(attention))
    folded = core.folded()
    assert all(layer.norm is None for _, layer in folded._named_layers())
    x, mask = torch.randn(5, 2, 6, dtype=torch.float64), torch.tensor([[True, True]] * 4 + [[True, False]])
    seen, _ = record_spikes(core)
    seen_folded, _ = record_spikes(folded)
    with torch.no_grad():
        assert torch.equal(core(x, mask), folded(x, mask))
    assert seen.keys() == seen_folded.keys() and all(torch.equal(seen[k], seen_folded[k]) for k in seen)
    affines = core.folded_affines()
    linears = {info.name: info for info in core.describe() if info.kind == "linear"}
    assert affines.keys() == linears.keys()
    for name, (W, b) in affines.items():
        assert W.shape == (linears[name].fan_out, linears[name].fan_in) and b.shape == (linears[name].fan_out,)


def test_layernorm_does_not_fold():
    core = make_core("sdsa", norm="layer")
    with pytest.raises(ValueError, match="does not fold"):
        core.folded_affines()


@pytest.mark.parametrize("attention", VARIANTS)
@pytest.mark.parametrize("norm", ["batch", "layer", "none"])
def test_gradients_reach_the_first_linear(attention, norm):
    core = make_core(attention, norm=norm)
    x = torch.randn(5, 2, 6, dtype=torch.float64, requires_grad=True)
    core(x, torch.ones(5, 2, dtype=torch.bool)).sum().backward()
    assert core.encoder.linear.weight.grad.abs().sum() > 0
    assert x.grad.abs().sum() > 0


def test_analog_input_magnitude_changes_the_spike_trains():
    """The reference thresholds its input (x >= 0); here the analog value sets the current."""
    core = make_core("sdsa").eval()
    u = torch.rand(4, 2, 6, dtype=torch.float64) + 0.1  # positive: a step function would see all ones
    trains = []
    for scale in (0.25, 0.5, 1.0):
        seen, handles = record_spikes(core)
        with torch.no_grad():
            core(scale * u, torch.ones(4, 2, dtype=torch.bool))
        trains.append(seen["encoder.lif"])
    assert not torch.equal(trains[0], trains[1]) and not torch.equal(trains[1], trains[2])


@pytest.mark.parametrize("attention", VARIANTS)
def test_firing_rates_recorded_and_alive_at_init(attention):
    torch.manual_seed(0)
    core = SpikingCore(32, CoreConfig(dim=64, heads=4, T=16, attention=attention))
    mask = torch.ones(16, 3, dtype=torch.bool)
    mask[10:, 0] = False
    core(torch.randn(16, 3, 32), mask)
    rates = core.last_firing_rates
    assert set(rates) == {name for name, m in core.named_modules() if isinstance(m, LIF)}
    assert all(0 < r < 1 for r in rates.values()), rates


@pytest.mark.parametrize("attention", VARIANTS)
def test_describe_lists_the_dataflow_in_order(attention):
    core = make_core(attention)
    layers = core.describe()
    names = [info.name for info in layers]
    modules = dict(core.named_modules())
    seen = {"input"}
    for info in layers:
        assert set(info.inputs) <= seen, info  # every input is produced earlier
        seen.add(info.name)
        if info.kind in ("linear", "lif"):
            assert modules[info.name] is info.module
    assert names[:2] == ["encoder.linear", "encoder.lif"] and layers[0].input_type == "analog"
    assert layers[-1].name == "blocks.1.res_mlp" and layers[-1].kind == "residual"
    kinds = {info.kind for info in layers}
    expected = {"and", "sum-over-utterances"} if attention == "sdsa" else {"ssa-matmul"}
    assert expected <= kinds
    assert [i.input_type for i in layers if i.name.endswith(("q.linear", "fc1.linear"))] == \
        ["spikes", "counts", "counts", "counts"]
    assert [i.name for i in core.layers()] == [i.name for i in layers if i.module is not None]
    attn_lifs = [i for i in layers if i.name.endswith(("context_lif", "attn_lif"))]
    assert all(i.neuron.v_th == 0.5 for i in attn_lifs) and len(attn_lifs) == 2


def test_config_and_input_validation():
    with pytest.raises(ValueError, match="attention"):
        CoreConfig(attention="softmax")
    with pytest.raises(ValueError, match="norm"):
        CoreConfig(norm="group")
    cfg = CoreConfig.from_dict(CoreConfig(dim=8, heads=2, neuron={"v_th": 0.8}).to_dict())
    assert cfg.neuron.v_th == 0.8 and cfg.attn_neuron.v_th == 0.5
    core = SpikingCore(6, CoreConfig(dim=8, heads=2, T=2))
    with pytest.raises(ValueError, match=r"x \[L, B, 6\]"):
        core(torch.zeros(3, 2, 5), torch.ones(3, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="bool mask"):
        core(torch.zeros(3, 2, 6), torch.ones(3, 2))
