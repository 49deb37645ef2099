"""Training settings: `TrainConfig` (every hyperparameter with its default, written once, checked
with errors naming the field) and the device helpers (tinygrad device names, BEAM context).

Re-exported by uop_engine.train, where most code imports them from.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .losses import LOSS_TASKS, LOSSES
from .optim import OPTIMIZERS, SCHEDULES

MONITORS = ("loss", "accuracy", "mae", "val_loss", "val_accuracy", "val_mae")


class ConfigError(ValueError):
    """A training setting is invalid; the message names the field."""


@dataclass
class TrainConfig:
    # objective
    loss: str = "cross_entropy"        # cross_entropy | binary_cross_entropy (logits) | mse | l1 | huber
    huber_delta: float = 1.0           # huber: |error| where the loss turns from quadratic to linear
    label_smoothing: float = 0.0       # cross_entropy: share of probability spread over all classes
    # optimizer
    optimizer: str = "adam"            # sgd | adam | adamw | lamb
    lr: float = 1e-3                   # base (peak, for one_cycle) learning rate
    weight_decay: float = 0.0          # L2 on the gradient for sgd/adam; decoupled for adamw/lamb
    momentum: float = 0.9              # sgd only (0 = plain SGD)
    nesterov: bool = False             # sgd only; needs momentum > 0
    beta1: float = 0.9                 # adam/adamw/lamb first-moment decay
    beta2: float = 0.999               # adam/adamw/lamb second-moment decay
    eps: float = 1e-8                  # adam/adamw/lamb denominator term
    grad_clip_norm: float = 0.0        # clip the global gradient norm to this value (0 = off)
    # learning-rate schedule (evaluated per step)
    schedule: str = "constant"         # constant | step | cosine | one_cycle
    step_size: int = 10                # step: epochs between decays
    gamma: float = 0.1                 # step: decay factor
    min_lr: float = 0.0                # cosine: final learning rate
    pct_start: float = 0.3             # one_cycle: share of steps spent rising to lr
    div_factor: float = 25.0           # one_cycle: starts at lr / div_factor
    final_div_factor: float = 1e4      # one_cycle: ends at lr / div_factor / final_div_factor
    warmup_epochs: int = 0             # linear warm-up before the schedule, in epochs ...
    warmup_steps: int = 0              # ... or in steps (set at most one)
    # data
    epochs: int = 10
    batch_size: int = 32
    shuffle: bool = True               # reshuffle every epoch (order from seed and epoch)
    validation_split: float = 0.0      # share of rows held out when no validation set is given
    # early stopping
    early_stopping: bool = False
    monitor: str = "val_loss"          # one of MONITORS
    mode: str = "auto"                 # min | max | auto (max for accuracy, min otherwise)
    patience: int = 5                  # epochs without improvement before stopping
    min_delta: float = 0.0             # smallest change that counts as an improvement
    restore_best: bool = True          # load the best epoch's weights when training ends
    # safety and runtime
    stop_on_nan: bool = True           # raise when the loss is NaN/inf, naming epoch and batch
    device: str = "auto"               # auto (tinygrad's default) | CPU | CUDA | METAL | ...
    jit: bool = True                   # TinyJit the training step (one jit per batch shape)
    beam: int = 0                      # tinygrad BEAM search width (0 = tinygrad's own BEAM env setting)
    seed: int = 0                      # weight init, shuffling, validation split and dropout
    # checkpoints
    checkpoint_every: int = 0          # save every N epochs (0 = never); needs checkpoint_dir
    checkpoint_dir: str | None = None
    keep_checkpoints: int = 0          # keep only the newest N checkpoints (0 = all)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        """Build from a dict (e.g. KNIME settings); unknown keys and bad values name the field."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = [k for k in d if k not in fields]
        if unknown:
            raise ConfigError(f"unknown training setting(s) {unknown}; valid settings: {', '.join(fields)}")
        kw = {k: _coerce(k, v, cls.__dataclass_fields__[k].default) for k, v in d.items()}
        cfg = cls(**kw)
        cfg.validate()
        return cfg

    def validate(self) -> "TrainConfig":
        def bad(name: str, why: str) -> ConfigError:
            return ConfigError(f"training setting '{name}' = {getattr(self, name)!r} {why}")
        choices = {"loss": LOSSES, "optimizer": OPTIMIZERS, "schedule": SCHEDULES, "monitor": MONITORS,
                   "mode": ("min", "max", "auto")}
        for name, ok in choices.items():
            if getattr(self, name) not in ok:
                raise bad(name, f"is not one of {', '.join(ok)}")
        positive = ("lr", "epochs", "batch_size", "step_size", "huber_delta", "div_factor", "final_div_factor")
        for name in positive:
            if not getattr(self, name) > 0:
                raise bad(name, "must be > 0")
        for name in ("weight_decay", "momentum", "grad_clip_norm", "min_lr", "patience", "min_delta", "beam", "eps",
                     "warmup_epochs", "warmup_steps", "checkpoint_every", "keep_checkpoints"):
            if getattr(self, name) < 0:
                raise bad(name, "must be >= 0")
        for name in ("label_smoothing", "beta1", "beta2", "gamma"):
            if not 0 <= getattr(self, name) <= 1:
                raise bad(name, "must be between 0 and 1")
        if not 0 <= self.validation_split < 1:
            raise bad("validation_split", "must be in [0, 1)")
        if not 0 < self.pct_start < 1:
            raise bad("pct_start", "must be in (0, 1)")
        if self.nesterov and (self.optimizer != "sgd" or self.momentum <= 0):
            raise bad("nesterov", "needs optimizer 'sgd' with momentum > 0")
        if self.warmup_epochs and self.warmup_steps:
            raise bad("warmup_steps", "cannot be combined with warmup_epochs; set one of them to 0")
        if self.schedule == "one_cycle" and (self.warmup_epochs or self.warmup_steps):
            raise bad("schedule", "has its own warm-up (pct_start); set warmup_epochs and warmup_steps to 0")
        if self.checkpoint_every and not self.checkpoint_dir:
            raise bad("checkpoint_dir", "must be set when checkpoint_every > 0")
        if self.label_smoothing and self.loss != "cross_entropy":
            raise bad("label_smoothing", "only applies to the cross_entropy loss; set it to 0")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise bad("seed", "must be an integer >= 0")
        return self

    @property
    def task(self) -> str:
        return LOSS_TASKS[self.loss]

    def monitor_mode(self) -> str:
        return self.mode if self.mode != "auto" else ("max" if "accuracy" in self.monitor else "min")


def _coerce(name: str, v: Any, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            if isinstance(v, str):
                if v.strip().lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                return v.strip().lower() in ("true", "1", "yes")
            return bool(v)
        if isinstance(default, int) and not isinstance(v, bool):
            if isinstance(v, float) and not v.is_integer():
                raise ValueError
            return int(v)
        if isinstance(default, float) and not isinstance(v, bool):
            return float(v)
        if default is None or isinstance(default, str):
            return None if v is None else str(v)
    except (TypeError, ValueError):
        pass
    else:
        return v
    raise ConfigError(f"training setting '{name}' = {v!r} is not a valid {type(default).__name__}")


def beam_ctx(beam: int) -> dict[str, int]:
    """Context settings for a BEAM width; 0 leaves tinygrad's own setting (the BEAM env var)."""
    return {"BEAM": int(beam)} if beam and beam > 0 else {}


# tinygrad backends that hold data but do not run kernels, and NULL, which runs nothing (a test and
# benchmarking device: every result would be garbage)
_NOT_COMPUTE = ("DISK", "TINYFS", "NPY", "RDMA", "NULL")


def device_names() -> list[str]:
    """The device names tinygrad knows (its runtime backends), found without opening any device."""
    from tinygrad import Device
    import tinygrad.device as tdev
    known = getattr(Device, "_devices", None) or list(getattr(tdev, "ALL_DEVICES", []))
    return sorted(d for d in known if d not in _NOT_COMPUTE)


def check_device_name(name: str) -> str:
    """'auto', or a tinygrad device name with an optional index ('CUDA:1'), canonicalised; a name
    tinygrad does not know raises ConfigError listing the known ones. No device is opened."""
    import re
    text = (name or "").strip()
    if text.lower() in ("", "auto"):
        return "auto"
    m = re.fullmatch(r"([A-Za-z_]+)(?::(\d+))?", text)
    known = device_names()
    if m is None or m.group(1).upper() not in known:
        raise ConfigError(f"training setting 'device' = {name!r} is not a tinygrad device; use auto or one of "
                          f"{', '.join(known)} (optionally with an index, e.g. CUDA:1)")
    return m.group(1).upper() + (f":{m.group(2)}" if m.group(2) and m.group(2) != "0" else "")


def resolve_device(name: str | None) -> str:
    from tinygrad import Device
    if name in (None, "", "auto", "AUTO"):
        return Device.DEFAULT
    try:
        Device[name]
    except Exception as e:  # tinygrad raises different errors per backend when it cannot open one
        raise ConfigError(f"training setting 'device' = {name!r} cannot be opened here ({type(e).__name__}: {e}); "
                          f"use 'auto' (here: {Device.DEFAULT})") from None
    return Device.canonicalize(name)
