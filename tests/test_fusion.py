"""MultiAttn fusion and the classifier head: shapes, masking, modality counts."""
import pytest
import torch

from neuro_erc.data import DataError
from neuro_erc.model.fusion import Classifier, MultiAttnFusion

D = 8


def _feats(modalities, L, B, seed):
    g = torch.Generator().manual_seed(seed)
    return {m: torch.randn(L, B, D, generator=g) for m in modalities}


@pytest.mark.parametrize("modalities", [("t", "a", "v"), ("t", "a")])
def test_shapes_and_zero_padding(modalities):
    torch.manual_seed(0)
    fusion = MultiAttnFusion(D, modalities, layers=2, heads=4, dropout=0.1).eval()
    mask = torch.tensor([[1, 1], [1, 1], [1, 0]], dtype=torch.bool)
    out = fusion(_feats(modalities, 3, 2, 0), mask)
    assert set(out) == set(modalities)
    for m in modalities:
        assert out[m].shape == (3, 2, D)
        assert torch.all(out[m][~mask] == 0)


@pytest.mark.parametrize("modalities", [("t", "a", "v"), ("t", "a")])
def test_padding_changes_nothing_for_real_utterances(modalities):
    torch.manual_seed(0)
    fusion = MultiAttnFusion(D, modalities, layers=2, heads=4, dropout=0.3).eval()
    short, long = _feats(modalities, 3, 1, 1), _feats(modalities, 6, 1, 2)
    with torch.no_grad():
        alone = fusion(short, torch.ones(3, 1, dtype=torch.bool))
        batch = {m: torch.cat([long[m], torch.cat([short[m], torch.full((3, 1, D), 7.0)])], dim=1) for m in modalities}
        mask = torch.ones(6, 2, dtype=torch.bool)
        mask[3:, 1] = False
        padded = fusion(batch, mask)
    for m in modalities:
        torch.testing.assert_close(padded[m][:3, 1], alone[m][:, 0], rtol=1e-5, atol=1e-6)


def test_each_modality_attends_the_others():
    torch.manual_seed(0)
    fusion = MultiAttnFusion(D, ("t", "a", "v"), layers=1).eval()
    feats = _feats(("t", "a", "v"), 4, 1, 3)
    mask = torch.ones(4, 1, dtype=torch.bool)
    with torch.no_grad():
        base = fusion(feats, mask)
        changed = fusion({**feats, "v": feats["v"] + 5.0}, mask)
    assert not torch.allclose(base["t"], changed["t"])
    assert not torch.allclose(base["a"], changed["a"])


def test_single_modality_is_identity():
    fusion = MultiAttnFusion(D, ("t",))
    assert sum(p.numel() for p in fusion.parameters()) == 0
    x = _feats(("t",), 3, 2, 4)
    mask = torch.tensor([[1, 1], [1, 0], [1, 0]], dtype=torch.bool)
    torch.testing.assert_close(fusion(x, mask)["t"], x["t"] * mask[..., None])


def test_bad_inputs_are_rejected():
    fusion = MultiAttnFusion(D, ("t", "a"))
    mask = torch.ones(3, 1, dtype=torch.bool)
    with pytest.raises(DataError, match="modalities"):
        fusion(_feats(("t",), 3, 1, 0), mask)
    with pytest.raises(DataError, match=r"\[L, B, 8\]"):
        fusion({"t": torch.zeros(3, 1, D), "a": torch.zeros(3, 1, 4)}, mask)
    with pytest.raises(ValueError, match="divisible"):
        MultiAttnFusion(10, ("t", "a"), heads=4)


def test_classifier_shapes_and_features():
    torch.manual_seed(0)
    clf = Classifier(3 * D, 16, 7, dropout=0.2).eval()
    x = torch.randn(5, 3 * D)
    logits, h = clf.forward_with_features(x)
    assert logits.shape == (5, 7) and h.shape == (5, 16)
    torch.testing.assert_close(clf(x), logits)
    torch.testing.assert_close(logits, clf.head(h))
