"""What a real implementation of a component needs to take part in a mesh run.

A real service is configured before the run, so everything here comes from the fixed
port plan (``--port-base``), the deadlines (how long to wait for each dependency,
``<NAME>_TIMEOUT``, and how long each caller waits for it, ``CALLER_<NAME>_WAITS``: every
timeout of the platform is set in one place, and they nest) and the mesh options, never
from a running mesh: the port the
mesh expects the service on, one URL per HTTP dependency (the edge's recording proxy,
so its calls are journaled), the Kafka bootstrap servers, its own database and Redis
(with the key namespace the mesh empties between scenarios, :mod:`.isolation`).
What cannot be given (the in-process bus, fakeredis: neither is reachable from another
process) becomes a warning instead of a variable.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import orjson

from ecom_harness.specs import Topology
from ecom_harness.stubs import Backends, database_name

from .addresses import PortPlan, http_url
from .isolation import KEY_PREFIX_VARIABLE, redis_key_prefix
from .mesh import MeshOptions

__all__ = ["ENV_FORMATS", "ComponentEnv", "EnvError", "component_env", "database_url"]

ENV_FORMATS = ("sh", "dotenv", "json")
LOCAL_KAFKA_HOST = "127.0.0.1"  # where ``--kafka local`` starts the broker (stubs/_tansu.py)


class EnvError(ValueError):
    """The environment cannot be worked out (no fixed ports, unknown component)."""


@dataclass(frozen=True, slots=True)
class ComponentEnv:
    """Environment variables for one real component, in the order worth reading them,
    and what could not be provided (with the flag that would provide it)."""

    component: str
    variables: dict[str, str]
    warnings: list[str] = field(default_factory=list)

    def render(self, fmt: str) -> str:
        """``sh`` (export lines, values shell-quoted), ``dotenv`` or ``json``."""
        if fmt == "json":
            return orjson.dumps(self.variables, option=orjson.OPT_INDENT_2).decode()
        line = {"sh": "export {}={}", "dotenv": "{}={}"}[fmt]
        quote = shlex.quote if fmt == "sh" else str
        return "\n".join(line.format(k, quote(v)) for k, v in self.variables.items())


def variable_name(component: str, suffix: str = "", prefix: str = "") -> str:
    """``inventory-svc`` -> ``INVENTORY_SVC_URL`` (with suffix ``_URL``)."""
    return prefix + re.sub(r"[^A-Z0-9]", "_", component.upper()) + suffix


def component_env(
    topology: Topology, plan: PortPlan, options: MeshOptions, component: str
) -> ComponentEnv:
    """The environment of a real ``component`` in a mesh run with ``options``."""
    if component not in plan.components:
        raise EnvError(f"unknown component '{component}' (known: {', '.join(plan.components)})")
    if options.port_base is None:
        raise EnvError(
            "--port-base is required: without fixed ports the mesh's addresses are only "
            "known once it has started"
        )
    env = ComponentEnv(component, {"PORT": str(_own_port(plan, options, component))})
    deadlines = options.deadlines
    for caller in sorted({e.source for e in topology.edges if e.target == component and e.is_http}):
        # how long each caller waits: answer it within that
        wait = deadlines.edge(caller, component)
        env.variables[variable_name(caller, "_WAITS", prefix="CALLER_")] = f"{wait:g}"
    edges = topology.edges_from(component)
    for edge in edges:
        if edge.is_http:
            port = plan.edges[f"{edge.source}->{edge.target}"]
            env.variables[variable_name(edge.target, "_URL")] = http_url(options.host, port)
            timeout = deadlines.edge(component, edge.target)
            env.variables[variable_name(edge.target, "_TIMEOUT")] = f"{timeout:g}"
    protocols = {e.protocol for e in edges}
    if "kafka" in protocols:
        _add_kafka(env, plan, options, topology.kafka_channels(component))
    if "postgresql" in protocols:
        env.variables["DATABASE_URL"] = database_url(component, options.postgres_url)
    if "redis" in protocols:
        _add_redis(env, options)
    return env


def _own_port(plan: PortPlan, options: MeshOptions, component: str) -> int:
    """Where the mesh forwards to: the ``--real`` URL's port when one is given for the
    component, else its fixed port in the plan."""
    real = options.real.get(component)
    port = urlsplit(real).port if real else None
    return port or plan.components[component]


def _add_kafka(
    env: ComponentEnv, plan: PortPlan, options: MeshOptions, channels: list[str]
) -> None:
    if options.kafka is None:
        env.warnings.append(
            f"{env.component} publishes or consumes Kafka topics ({', '.join(channels)}), "
            "and the in-process bus cannot be reached from another process: "
            "add --kafka local (or --kafka HOST:PORT) for KAFKA_BOOTSTRAP_SERVERS"
        )
        return
    servers = f"{LOCAL_KAFKA_HOST}:{plan.kafka}" if options.kafka == "local" else options.kafka
    env.variables["KAFKA_BOOTSTRAP_SERVERS"] = servers


def database_url(component: str, postgres_url: str | None) -> str:
    """The component's own database: ``ecom_<component>`` on the PostgreSQL server (as
    the stubs name theirs), else a SQLite file of that name in the working directory."""
    name = database_name(Backends().database_prefix, component)
    if postgres_url is None:
        return f"sqlite:///{name}.db"
    return urlsplit(postgres_url)._replace(path=f"/{name}").geturl()


def _add_redis(env: ComponentEnv, options: MeshOptions) -> None:
    if options.redis_url is None:
        env.warnings.append(
            f"{env.component} uses Redis, and the embedded fakeredis cannot be shared "
            "across processes: add --redis URL for REDIS_URL"
        )
        return
    env.variables["REDIS_URL"] = options.redis_url
    # every key of the service under it: the mesh empties it when a scenario starts
    assert options.port_base is not None  # component_env checked it
    env.variables[KEY_PREFIX_VARIABLE] = redis_key_prefix(options.port_base, env.component)
