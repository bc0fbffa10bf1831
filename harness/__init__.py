"""The harness: the mesh (a recording proxy per topology edge, faults, the journal, the
admin API), the configuration a real service needs to join it, and running it until
signalled.

May import: ``ecom_harness.stubs`` and ``ecom_harness.specs``; never the CLI. Names load
on first use (PEP 562).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ecom_harness._lazy import lazy_exports

if TYPE_CHECKING:
    from .addresses import SERVED_KINDS, PortPlan, http_url
    from .admin import ADMIN_COMPONENT, admin_app, admin_spec
    from .bundle import BundleError, load_bundle
    from .env import ENV_FORMATS, ComponentEnv, EnvError, component_env, database_url
    from .faults import FAULT_KINDS, Fault, FaultBook, FaultError
    from .journal import EventEntry, Interaction, Journal, redact_body, redact_headers
    from .mesh import Mesh, MeshConfigError, MeshOptions, unreachable_real_services
    from .proxy import RecordingProxy
    from .running import STOP_SIGNALS, run_until_signalled
    from .stub_server import StubServer, StubServerOptions

_EXPORTS = {
    "ADMIN_COMPONENT": ".admin",
    "BundleError": ".bundle",
    "ComponentEnv": ".env",
    "ENV_FORMATS": ".env",
    "EnvError": ".env",
    "EventEntry": ".journal",
    "FAULT_KINDS": ".faults",
    "Fault": ".faults",
    "FaultBook": ".faults",
    "FaultError": ".faults",
    "Interaction": ".journal",
    "Journal": ".journal",
    "Mesh": ".mesh",
    "MeshConfigError": ".mesh",
    "MeshOptions": ".mesh",
    "unreachable_real_services": ".mesh",
    "PortPlan": ".addresses",
    "RecordingProxy": ".proxy",
    "SERVED_KINDS": ".addresses",
    "STOP_SIGNALS": ".running",
    "StubServer": ".stub_server",
    "StubServerOptions": ".stub_server",
    "admin_app": ".admin",
    "admin_spec": ".admin",
    "component_env": ".env",
    "database_url": ".env",
    "http_url": ".addresses",
    "load_bundle": ".bundle",
    "redact_body": ".journal",
    "redact_headers": ".journal",
    "run_until_signalled": ".running",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


__all__ = [
    "ADMIN_COMPONENT",
    "ENV_FORMATS",
    "FAULT_KINDS",
    "SERVED_KINDS",
    "STOP_SIGNALS",
    "BundleError",
    "ComponentEnv",
    "EnvError",
    "EventEntry",
    "Fault",
    "FaultBook",
    "FaultError",
    "Interaction",
    "Journal",
    "Mesh",
    "MeshConfigError",
    "MeshOptions",
    "PortPlan",
    "RecordingProxy",
    "StubServer",
    "StubServerOptions",
    "admin_app",
    "admin_spec",
    "component_env",
    "database_url",
    "http_url",
    "load_bundle",
    "redact_body",
    "redact_headers",
    "run_until_signalled",
    "unreachable_real_services",
]
