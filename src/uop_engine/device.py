"""Which tinygrad device to run on: the best available one, or the one asked for.

    dev = device_manager.get_device()          # e.g. "CUDA" on a GPU machine, else "CPU"
    dev = device_manager.get_device("CPU")     # an explicit choice, checked
    TINYUOP_DEVICE=CPU python script.py        # the same from the environment

Order: the name passed in > the running pipeline's device > $TINYUOP_DEVICE > tinygrad's
default (its first device that opens, GPUs before CPU). A device that cannot be opened gives
a `DeviceError` listing the devices that can.
"""
from __future__ import annotations

import os

from .pipeline_context import current_context

ENV = "TINYUOP_DEVICE"
AUTO = ("", "auto", "default", "best")


class DeviceError(ValueError):
    """The requested device does not exist or cannot be opened here."""


class DeviceManager:
    def __init__(self) -> None:
        self._available: list[str] | None = None
        self._override: str | None = None

    def available(self, refresh: bool = False) -> list[str]:
        """tinygrad devices that open on this machine (probed once, then cached)."""
        if self._available is None or refresh:
            from tinygrad import Device
            self._available = list(dict.fromkeys(Device.get_available_devices()))
        return list(self._available)

    def set_device(self, name: str | None) -> str | None:
        """Use `name` from now on in this process (None or 'auto' = back to automatic)."""
        self._override = None if name is None or name.strip().lower() in AUTO else self.check(name)
        return self._override

    def check(self, name: str, source: str = "the device name") -> str:
        """Canonical name of a device that opens here ('cuda' -> 'CUDA'), else DeviceError."""
        from tinygrad import Device
        if not isinstance(name, str) or not name.strip():
            raise DeviceError(f"{source} {name!r} is not a device name; available: {', '.join(self.available())}")
        canon = Device.canonicalize(name.strip())
        base = canon.split(":")[0]
        if base not in Device._devices:
            raise DeviceError(f"unknown device '{name}' ({source}); tinygrad knows {', '.join(sorted(Device._devices))}; "
                              f"available here: {', '.join(self.available())}")
        try:
            Device[canon]
        except Exception as e:  # each backend fails its own way when its driver or hardware is missing
            raise DeviceError(f"device '{name}' ({source}) cannot be opened here ({type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else ''}); available here: "
                              f"{', '.join(self.available())}") from None
        return canon

    def get_device(self, prefer: str | None = None) -> str:
        """The device to use (see module docs for the order)."""
        if prefer is not None and prefer.strip().lower() not in AUTO:
            return self.check(prefer, "asked for")
        ctx = current_context()
        if ctx is not None and ctx.device:
            return ctx.device
        if self._override:
            return self._override
        env = os.environ.get(ENV, "").strip()
        if env and env.lower() not in AUTO:
            return self.check(env, f"from ${ENV}")
        from tinygrad import Device
        return Device.DEFAULT

    def describe(self) -> dict:
        """What get_device() picks and why, plus the available devices (for logs and `tinyuop`)."""
        ctx = current_context()
        source = ("pipeline" if ctx is not None and ctx.device else "set_device" if self._override
                  else f"${ENV}" if os.environ.get(ENV, "").strip().lower() not in AUTO else "auto")
        return {"device": self.get_device(), "source": source, "available": self.available()}


device_manager = DeviceManager()
