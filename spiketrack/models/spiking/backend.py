"""Which spikingjelly implementation runs the neurons on CUDA: ``model.neuron.backend``, chosen once per process.

spikingjelly 2.0 has no ``backend=`` argument: each neuron op (``lif``, ``ilif``) picks its CUDA implementation
when spikingjelly is imported, from the environment variable ``SJ_<OP>_CUDA_IMPLEMENTATION``
(``auto|cuda|triton|torch``); on CPU tensors it always runs its Torch path. This module sets those variables and
imports no spikingjelly, so the CLI (:func:`spiketrack.cli.main`) can call :func:`select_backend` before anything
imports spikingjelly. Backends:

- ``auto``: spikingjelly's own choice (native CUDA > Triton > Torch, whatever the wheel has); the variables are
  left as the user's environment sets them.
- ``triton``: spikingjelly's Triton kernels. ``torch``: the Torch loop on every device (debugging, timing).
- ``cuda``: spikingjelly's native CUDA extension, which the registry wheel of spikingjelly 2.0 does not ship
  (it has Triton and Torch only); ``cuda`` is therefore mapped to ``triton``, with a logged note.

Set after spikingjelly was imported (a Python process that built a model first), a variable has no effect; the
choice then stays spikingjelly's and :func:`select_backend` logs that. ``spiketrack model summary`` and
:func:`spiketrack.models.spiking.neurons.implementation` report the implementation spikingjelly actually binds
(through its public ``functional.neuron_implementation``).
"""

from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "cuda", "triton")
# spikingjelly neuron ops spiketrack's neurons use (the ``op`` column of neurons.NEURONS; checked there)
SJ_OPS = ("lif", "ilif")
# backend the installed spikingjelly cannot provide -> what runs instead (see the module docstring)
_SUBSTITUTES = {"cuda": "triton"}
_noted: set[str] = set()


def env_variable(op: str) -> str:
    """spikingjelly's variable that selects the CUDA implementation of neuron op ``op`` ('lif' -> SJ_LIF_...)."""
    return f"SJ_{op.upper()}_CUDA_IMPLEMENTATION"


def resolve_backend(backend: str) -> str:
    """``model.neuron.backend`` -> the spikingjelly implementation requested ('cuda' -> 'triton', logged once)."""
    from spiketrack.errors import ConfigError

    if backend not in BACKENDS:
        raise ConfigError(f"key 'model.neuron.backend': expected one of {list(BACKENDS)}, got {backend!r}")
    name = _SUBSTITUTES.get(backend, backend)
    if name != backend and backend not in _noted:
        _noted.add(backend)
        log.warning(
            "model.neuron.backend %r: the installed spikingjelly 2.0 wheel has no native CUDA build; using %r",
            backend, name,
        )
    return name


def note_once(key: str, message: str, warn: bool = True) -> None:
    """Log ``message`` once per process (``key`` decides what counts as the same message)."""
    if key in _noted:
        return
    _noted.add(key)
    (log.warning if warn else log.info)("%s", message)


def select_backend(backend: str) -> str:
    """Request ``backend`` for every neuron op of this process; returns the implementation requested.

    Call before spikingjelly is imported (the CLI does, at start). ``auto`` changes nothing.
    """
    name = resolve_backend(backend)
    if name == "auto":
        return name
    imported = any(f"spikingjelly._ops.{op}" in sys.modules for op in SJ_OPS)
    for op in SJ_OPS:
        var = env_variable(op)
        if os.environ.get(var, "auto") == name:
            continue
        if imported:
            if f"{var}={name}" not in _noted:
                _noted.add(f"{var}={name}")
                log.warning(
                    "model.neuron.backend %r not applied: spikingjelly was imported with %s=%s; set the variable "
                    "before starting Python (the spiketrack CLI does)", backend, var, os.environ.get(var, "auto"),
                )
            continue
        os.environ[var] = name
    return name


__all__ = ["BACKENDS", "SJ_OPS", "env_variable", "note_once", "resolve_backend", "select_backend"]
