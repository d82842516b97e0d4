"""Data-parallel training: shards of a batch, and torchrun with 2 gloo processes = 1 process."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from neuro_erc.checkpoint import Checkpoint
from neuro_erc.data.batching import iterate_batches, iterate_shards
from neuro_erc.data.synthetic import make_synthetic

# Same global batch, same seed: the processes' gradients are summed in another order, so they
# agree to float32 rounding, not bit for bit; Adam divides by sqrt(v), which turns rounding in a
# near-zero gradient (measured: a readout bias behind a shift-invariant softmax) into steps of
# up to lr·1e-2. Measured after 3 epochs: at most 3.5e-5 apart, same dev predictions.
WEIGHT_TOLERANCE = 1e-4

# Per-utterance losses only (CE): soft-HGR and class-weighted CE are batch statistics, which
# shards cannot reproduce exactly. No dropout (each process draws its own masks) and LayerNorm
# (BatchNorm statistics are per process).
CONFIG = {
    "batch_size": 8, "lr": 3e-3,
    "model": {"modalities": ["t", "a"], "dim": 16, "context": "bigru", "dropout": 0.0, "fusion_layers": 1,
              "classifier_hidden": 16, "core": {"dim": 16, "depth": 1, "mlp_ratio": 1, "T": 2, "norm": "layer"}},
    "loss": {"ce": 1.0, "dsc": 0.0, "hgr": 0.0},
}


def test_shards_cover_each_batch_once_with_scales_that_average_to_the_batch_mean():
    dialogues = make_synthetic(seed=0, n_train=11, n_dev=1, n_test=1, max_len=6).split("train")
    whole = list(iterate_batches(dialogues, ["t"], 4, shuffle=True, seed=5))
    shards = [list(iterate_shards(dialogues, ["t"], 4, rank, 3, shuffle=True, seed=5)) for rank in range(3)]
    assert all(len(s) == len(whole) for s in shards)  # every process takes every step
    for step, batch in enumerate(whole):
        parts = [shards[rank][step] for rank in range(3)]
        real = [(b, scale) for b, scale in parts if scale > 0]
        assert sorted(i for b, _ in real for i in b.dialogue_ids) == sorted(batch.dialogue_ids)
        assert sum(scale for _, scale in parts) == pytest.approx(3.0)  # DDP divides the summed gradients by 3
    last = [shards[rank][-1] for rank in range(3)]  # 11 = 2·4 + 3: the last batch has 3 dialogues, one each
    assert all(scale > 0 for _, scale in last)
    two = [list(iterate_shards(dialogues, ["t"], 4, rank, 4))[-1] for rank in range(4)]
    assert [scale for _, scale in two][-1] == 0.0  # a rank with no dialogue of the last batch still steps


def _train_argv(out, epochs, *extra):
    return ["-m", "neuro_erc.cli", "train", "--dataset", "synthetic", "--modalities", "t,a", "--epochs", str(epochs),
            "--config", str(out.parent / "cfg.json"), "--out", str(out), "--quiet", "--no-tensorboard", *extra]


def _torchrun(out, epochs, *extra, wait=True):
    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
            *_train_argv(out, epochs, *extra)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if not wait:
        return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _weights(path):
    return Checkpoint.load(path).weights


def test_two_gloo_processes_reach_the_weights_of_one_and_resume_after_a_kill(tmp_path):
    (tmp_path / "cfg.json").write_text(json.dumps(CONFIG))
    one = tmp_path / "one"
    single = subprocess.run([sys.executable, *_train_argv(one, 3)], env={**os.environ, "OMP_NUM_THREADS": "1"},
                            capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr[-3000:]
    two = tmp_path / "two"
    _torchrun(two, 3)
    a, b = _weights(one / "last.pt"), _weights(two / "last.pt")
    assert set(a) == set(b)
    worst = max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
    assert worst <= WEIGHT_TOLERANCE, worst
    assert json.loads((two / "config.json").read_text()) == json.loads((one / "config.json").read_text())
    assert json.loads((two / "report_dev.json").read_text()) == json.loads((one / "report_dev.json").read_text())
    assert len((two / "metrics.jsonl").read_text().splitlines()) == 3  # rank 0 alone writes

    killed = tmp_path / "killed"
    job = _torchrun(killed, 3, wait=False)
    deadline = time.time() + 300
    while time.time() < deadline and not (killed / "metrics.jsonl").exists():
        time.sleep(0.2)
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    assert (killed / "last.pt").exists()
    _torchrun(killed, 3, "--resume")
    c = _weights(killed / "last.pt")
    assert all(torch.equal(b[k], c[k]) for k in b)  # resumed = uninterrupted, bit for bit
    assert [json.loads(x)["epoch"] for x in (killed / "metrics.jsonl").read_text().splitlines()] == [0, 1, 2]
