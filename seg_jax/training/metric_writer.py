"""Training metrics to JSONL, per-split CSV and TensorBoard event files in the workdir (process 0 only)."""
from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Mapping

from seg_jax.training.writer_noise import held_writer_noise


class MetricWriter:
    """Appends ``{"step", "split", **metrics}`` rows; a disabled writer (other processes) writes nothing."""

    def __init__(self, workdir: str | Path, enabled: bool = True):
        self.enabled = enabled
        self.workdir = Path(workdir)
        self._tb = None
        if not enabled:
            return
        self.jsonl_path = self.workdir / "metrics.jsonl"
        try:
            from tensorboardX import SummaryWriter
            self._tb = SummaryWriter(str(self.workdir / "tensorboard"))
        except ImportError:  # TensorBoard logging is optional; JSONL/CSV always work
            self._tb = None

    def write(self, step: int, split: str, metrics: Mapping[str, float]) -> None:
        """Append one row; a write that fails (a full disk) raises a one-line ``OSError`` naming the cause, after
        the TensorBoard writer is closed quietly (its thread would otherwise report the failure again at exit)."""
        if not self.enabled:
            return
        row = {"step": int(step), "split": split, "time": round(time.time(), 3),
               **{k: float(v) for k, v in metrics.items()}}
        try:
            with self.jsonl_path.open("a") as f:
                f.write(json.dumps(row) + "\n")
            self._append_csv(row)
            if self._tb is not None:
                for k, v in metrics.items():
                    self._tb.add_scalar(f"{split}/{k}", float(v), int(step))
        except OSError as e:
            self._drop_tensorboard()
            from seg_jax.common.write_causes import cause_of
            found = cause_of(e.strerror or str(e), e.errno)
            cause, fix = found if found else (e.strerror or str(e), "fix the workdir")
            raise OSError(f"cannot write the metrics of step {int(step)} in {self.workdir}: {cause}; {fix} and "
                          "rerun the same command to resume from the last checkpoint") from None

    def _drop_tensorboard(self) -> None:
        """Close the TensorBoard writer holding back what its thread reports; later metrics skip it."""
        tb, self._tb = self._tb, None
        if tb is not None:
            with held_writer_noise():
                try:
                    tb.close()
                except Exception:  # noqa: BLE001 - it fails the same way the write did
                    pass

    def _append_csv(self, row: dict) -> None:
        # One CSV per split ("metrics_train.csv", "metrics_val.csv"); columns fixed by its first row.
        path = self.workdir / f"metrics_{row['split']}.csv"
        new = not path.exists()
        with path.open("a", newline="") as f:
            writer = csv.DictWriter(f, list(row), extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)

    def flush(self) -> None:
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def read_metrics(workdir: str | Path) -> list[dict]:
    """All rows of ``<workdir>/metrics.jsonl`` (for plots and tests); [] if there is none."""
    return read_metrics_file(Path(workdir) / "metrics.jsonl")


def read_metrics_file(path: str | Path) -> list[dict]:
    """All rows of a metrics JSONL file (e.g. one copied beside a training record); [] if it does not exist."""
    path = Path(path)
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
