"""Behaviours: one simulator module per component, and the framework they share
(:class:`Simulator`, its context and peers, answers alike in every simulator);
:data:`SIMULATORS` maps component names to them.

Each module of this package defines one :class:`Simulator` subclass with a ``component``
name; they are found here by walking the package, so adding a simulator is adding a
module. Components without a simulator answer from their spec's examples.
"""

from __future__ import annotations

import importlib
import pkgutil

from ._clients import PeerClient, ReusedConnectionRetry, peer_client
from ._deadlines import SERVER_KEEPALIVE, DeadlineError, Deadlines
from ._simulator import (
    Peers,
    SeedError,
    Simulator,
    SimulatorContext,
    health_behaviour,
    json_response,
    problem_response,
    render_problem,
    rfc3339,
    utc_now,
)

__all__ = [
    "SERVER_KEEPALIVE",
    "SIMULATORS",
    "DeadlineError",
    "Deadlines",
    "PeerClient",
    "Peers",
    "ReusedConnectionRetry",
    "SeedError",
    "Simulator",
    "SimulatorContext",
    "health_behaviour",
    "json_response",
    "peer_client",
    "problem_response",
    "render_problem",
    "rfc3339",
    "utc_now",
]


def _discover() -> dict[str, type[Simulator]]:
    found: dict[str, type[Simulator]] = {}
    for module_info in pkgutil.iter_modules(__path__):
        if module_info.name.startswith("_"):
            continue  # the framework and shared helpers, no simulator
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, Simulator)
                and value is not Simulator
                and value.__module__ == module.__name__
                and getattr(value, "component", None)
            ):
                found[value.component] = value
    return found


SIMULATORS: dict[str, type[Simulator]] = _discover()
