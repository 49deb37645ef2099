"""Optimizer and learning-rate schedule factories over tinygrad's optimizers.

Update rules match PyTorch: SGD (momentum, Nesterov, L2 weight decay added to the gradient),
Adam (L2 weight decay added to the gradient, like `torch.optim.Adam(weight_decay=...)`),
AdamW (decoupled decay) and LAMB (Adam update scaled by the trust ratio ||w|| / ||update||).
The learning rate lives in the optimizer's `lr` tensor, so a schedule can change it per step
without recompiling a jitted training step.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

OPTIMIZERS = ("sgd", "adam", "adamw", "lamb")
SCHEDULES = ("constant", "step", "cosine", "one_cycle")


def make_optimizer(name: str, params: list, lr: float, *, weight_decay: float = 0.0, momentum: float = 0.9,
                   nesterov: bool = False, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
    """A tinygrad optimizer over `params` (trainable tensors; buffers with is_param False are
    realised with each step but not updated)."""
    from tinygrad.nn import optim
    if name == "sgd":
        # fused=False keeps one state tensor per weight, so the state maps 1:1 onto checkpoints
        return optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov, fused=False)
    if name == "adam":
        opt = optim.Adam(params, lr=lr, b1=beta1, b2=beta2, eps=eps, fused=False)
        if weight_decay:
            _add_l2(opt, weight_decay)
        return opt
    if name == "adamw":
        return optim.AdamW(params, lr=lr, b1=beta1, b2=beta2, eps=eps, weight_decay=weight_decay, fused=False)
    if name == "lamb":
        return optim.LAMB(params, lr=lr, b1=beta1, b2=beta2, eps=eps, weight_decay=weight_decay, fused=False)
    raise ValueError(f"unknown optimizer '{name}'; choose one of {', '.join(OPTIMIZERS)}")


def _add_l2(opt, wd: float) -> None:
    """Adam with PyTorch's coupled weight decay: grad += wd * w before the moment updates."""
    inner = opt._step

    def step(params, grads):
        return inner(params, [g + wd * t.detach() for t, g in zip(params, grads)])
    opt._step = step


def set_lr(opt, lr: float) -> None:
    """Write a new learning rate into the optimizer's lr tensor (outside a jitted step)."""
    from tinygrad import Tensor
    opt.lr.assign(Tensor([lr], dtype=opt.lr.dtype, device=opt.lr.device)).realize()


# ---- optimizer state (for checkpoints) ---------------------------------------------------
def _state_tensors(opt) -> dict[str, Any]:
    """Named state tensors of tinygrad's SGD/LARS (b) and Adam/LAMB (m, v, b1_t, b2_t)."""
    out: dict[str, Any] = {"lr": opt.lr}
    for name in ("b", "m", "v"):
        for i, t in enumerate(getattr(opt, name, None) or []):
            out[f"{name}.{i}"] = t
    for name in ("b1_t", "b2_t"):
        if getattr(opt, name, None) is not None:
            out[name] = getattr(opt, name)
    return out


def optimizer_state(opt) -> dict[str, np.ndarray]:
    return {k: t.numpy() for k, t in _state_tensors(opt).items()}


def load_optimizer_state(opt, state: dict[str, np.ndarray]) -> None:
    """Restore state saved by `optimizer_state` from an optimizer of the same kind and model."""
    from tinygrad import Tensor
    tensors = _state_tensors(opt)
    missing = [k for k in tensors if k not in state]
    if missing:
        raise ValueError(f"the saved optimizer state lacks {missing[:5]}: it was saved by another optimizer "
                         "or for another graph; resume with the same optimizer setting")
    for k, t in tensors.items():
        arr = np.asarray(state[k])
        if tuple(arr.shape) != tuple(t.shape):
            raise ValueError(f"optimizer state '{k}' has shape {arr.shape}, expected {tuple(t.shape)}")
        t.assign(Tensor(np.ascontiguousarray(arr), dtype=t.dtype, device=t.device)).realize()


# ---- learning-rate schedules -------------------------------------------------------------
def make_schedule(schedule: str, lr: float, *, steps_per_epoch: int, epochs: int, step_size: int = 10,
                  gamma: float = 0.1, min_lr: float = 0.0, warmup_steps: int = 0, pct_start: float = 0.3,
                  div_factor: float = 25.0, final_div_factor: float = 1e4) -> Callable[[int], float]:
    """`lr_at(step)` for a 0-based global step. Warm-up (linear from lr/warmup_steps to lr over
    `warmup_steps`) comes first; the schedule then runs over the remaining steps:

    - constant: lr
    - step: lr * gamma ** (epochs since warm-up // step_size)      (PyTorch StepLR, per epoch)
    - cosine: min_lr + (lr - min_lr) * (1 + cos(pi * t / T)) / 2   (CosineAnnealingLR, per step)
    - one_cycle: PyTorch's OneCycleLR (cosine), max_lr = lr; it has its own warm-up (pct_start)
    """
    spe = max(1, int(steps_per_epoch))
    total = max(1, spe * int(epochs))
    w = int(warmup_steps)
    rest = max(1, total - w)

    def base(t: int) -> float:
        if schedule == "constant":
            return lr
        if schedule == "step":
            return lr * gamma ** ((t // spe) // step_size)
        if schedule == "cosine":
            return min_lr + (lr - min_lr) * (1 + math.cos(math.pi * min(t, rest) / rest)) / 2
        if schedule == "one_cycle":
            return _one_cycle(t, total, lr, pct_start, div_factor, final_div_factor)
        raise ValueError(f"unknown schedule '{schedule}'; choose one of {', '.join(SCHEDULES)}")

    def lr_at(step: int) -> float:
        if step < w:
            return lr * (step + 1) / w
        return base(step - w)
    return lr_at


def _one_cycle(t: int, total: int, max_lr: float, pct: float, div: float, final_div: float) -> float:
    start, low = max_lr / div, max_lr / div / final_div
    up_end = float(pct * total) - 1          # the step at which lr peaks
    end = float(total - 1)
    t = min(t, total - 1)

    def cos_anneal(a: float, b: float, frac: float) -> float:
        return b + (a - b) / 2.0 * (math.cos(math.pi * frac) + 1)
    if t <= up_end:
        return cos_anneal(start, max_lr, t / up_end if up_end > 0 else 1.0)
    return cos_anneal(max_lr, low, (t - up_end) / (end - up_end) if end > up_end else 1.0)
