"""Seeded, order-independent weight initialisation in numpy.

Each node draws from its own generator seeded by (seed, node id), so adding a node never
changes the initial weights of the others, and the same seed gives the same weights on
every machine and device.
"""
from __future__ import annotations

import hashlib

import numpy as np

from .optable import WeightSpec


def _node_rng(seed: int, node_id: str, name: str) -> np.random.Generator:
    h = int.from_bytes(hashlib.sha256(f"{node_id}/{name}".encode()).digest()[:8], "little")
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, h])


def init_weight(spec: WeightSpec, seed: int, node_id: str, name: str) -> np.ndarray:
    if spec.init == "zeros":
        return np.zeros(spec.shape, np.float32)
    if spec.init == "ones":
        return np.ones(spec.shape, np.float32)
    rng = _node_rng(seed, node_id, name)
    if spec.init == "normal":
        return rng.standard_normal(spec.shape).astype(np.float32)
    if spec.init == "fan_in_uniform":  # PyTorch's default for Linear/Conv: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
        bound = 1.0 / np.sqrt(max(spec.fan_in, 1))
        return rng.uniform(-bound, bound, spec.shape).astype(np.float32)
    raise ValueError(f"unknown initialiser '{spec.init}'")
