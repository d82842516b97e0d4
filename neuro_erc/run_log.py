"""A run's per-epoch record: ``metrics.jsonl`` (one JSON line per epoch) and TensorBoard.

TensorBoard event files go to ``RUN_DIR/tb/`` (``tensorboard --logdir RUN_DIR/tb``):
losses, dev weighted F1 and accuracy, learning rate, per-layer firing rates and epoch
time, with the epoch as the step. On ``--resume`` both logs are cut back to the epochs
the checkpoint had finished, so no epoch appears twice.
"""
from __future__ import annotations

import json
from pathlib import Path


class RunLog:
    def __init__(self, out_dir: Path, start_epoch: int, tensorboard: bool = True):
        self.path = out_dir / "metrics.jsonl"
        if start_epoch > 0 and self.path.exists():
            lines = self.path.read_text().splitlines()
            keep = [line for line in lines if json.loads(line)["epoch"] < start_epoch]
            if keep != lines:  # epochs after the checkpoint ran before a kill: they are run again
                self.path.write_text("".join(line + "\n" for line in keep))
        else:
            self.path.unlink(missing_ok=True)
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # imports tensorboard: only when asked for

            self.writer = SummaryWriter(str(out_dir / "tb"), purge_step=start_epoch if start_epoch > 0 else None)

    def write(self, record: dict) -> None:
        with open(self.path, "a") as fh:
            fh.write(json.dumps(record) + "\n")
        if self.writer is None:
            return
        step = record["epoch"]
        for name, value in record["loss"].items():
            self.writer.add_scalar(f"loss/{name}", value, step)
        self.writer.add_scalar("dev/weighted_f1", record["dev_weighted_f1"], step)
        self.writer.add_scalar("dev/accuracy", record["dev_accuracy"], step)
        self.writer.add_scalar("lr", record["lr"], step)
        for layer, rate in record["firing_rates"].items():
            self.writer.add_scalar(f"firing_rate/{layer}", rate, step)
        self.writer.add_scalar("seconds_per_epoch", record["seconds"], step)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
