"""The harness: topology model and lint, and (later) the mesh, scenarios and reports.

Depends on :mod:`ecom_harness.stubs` only; never on the CLI.
"""

from .lint import LintReport, lint_specs
from .topology import (
    COMPONENT_KINDS,
    PROTOCOLS,
    Component,
    Edge,
    Topology,
    TopologyError,
    load_topology,
    parse_topology,
)
from .topology_render import FORMATS as TOPOLOGY_FORMATS
from .topology_render import render_topology

__all__ = [
    "COMPONENT_KINDS",
    "PROTOCOLS",
    "TOPOLOGY_FORMATS",
    "Component",
    "Edge",
    "LintReport",
    "Topology",
    "TopologyError",
    "lint_specs",
    "load_topology",
    "parse_topology",
    "render_topology",
]
