"""The harness: the mesh (a recording proxy per topology edge, faults, the journal, the
admin API), the configuration a real service needs to join it, running it until
signalled, and the scenarios (files, lint, the runner and its event stream, reporters).

May import: ``ecom_harness.stubs`` and ``ecom_harness.specs``; never the CLI. Names load
on first use (PEP 562).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ecom_harness._lazy import lazy_exports

if TYPE_CHECKING:
    from .addresses import SERVED_KINDS, PortPlan, http_url
    from .admin import ADMIN_COMPONENT, admin_app, admin_spec
    from .broker_watch import BrokerWatch
    from .bundle import BundleError, load_bundle
    from .env import ENV_FORMATS, ComponentEnv, EnvError, component_env, database_url
    from .faults import FAULT_KINDS, Fault, FaultBook, FaultError
    from .journal import EventEntry, Interaction, Journal, redact_body, redact_headers
    from .mesh import GATEWAY, Mesh, MeshConfigError, MeshOptions, unreachable_real_services
    from .order_ledger import OrderLedger, stock_conserved
    from .proxy import RecordingProxy
    from .reporters import ConsoleReporter, JournalReporter, JsonReporter, JUnitReporter
    from .run_events import (
        ExpectationChecked,
        ExpectationResult,
        JournalEntrySeen,
        RunEvent,
        RunFinished,
        RunResult,
        RunStarted,
        ScenarioFinished,
        ScenarioResult,
        ScenarioStarted,
        StepNote,
        StepSent,
    )
    from .runner import RunPlan, RunSetupError, run_scenarios
    from .running import STOP_SIGNALS, run_until_signalled
    from .scenario_files import Scenario, ScenarioError, Step, load_scenario, load_scenarios
    from .scenario_lint import lint_scenario_files
    from .stub_server import StubServer, StubServerOptions

_EXPORTS = {
    "ADMIN_COMPONENT": ".admin",
    "BrokerWatch": ".broker_watch",
    "GATEWAY": ".mesh",
    "OrderLedger": ".order_ledger",
    "stock_conserved": ".order_ledger",
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
    "ConsoleReporter": ".reporters",
    "JournalReporter": ".reporters",
    "JsonReporter": ".reporters",
    "JUnitReporter": ".reporters",
    "ExpectationChecked": ".run_events",
    "ExpectationResult": ".run_events",
    "JournalEntrySeen": ".run_events",
    "RunEvent": ".run_events",
    "RunFinished": ".run_events",
    "RunResult": ".run_events",
    "RunStarted": ".run_events",
    "ScenarioFinished": ".run_events",
    "ScenarioResult": ".run_events",
    "ScenarioStarted": ".run_events",
    "StepNote": ".run_events",
    "StepSent": ".run_events",
    "RunPlan": ".runner",
    "RunSetupError": ".runner",
    "run_scenarios": ".runner",
    "Scenario": ".scenario_files",
    "ScenarioError": ".scenario_files",
    "Step": ".scenario_files",
    "load_scenario": ".scenario_files",
    "load_scenarios": ".scenario_files",
    "lint_scenario_files": ".scenario_lint",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)


__all__ = [
    "ADMIN_COMPONENT",
    "ENV_FORMATS",
    "FAULT_KINDS",
    "GATEWAY",
    "SERVED_KINDS",
    "STOP_SIGNALS",
    "BrokerWatch",
    "BundleError",
    "ComponentEnv",
    "ConsoleReporter",
    "EnvError",
    "EventEntry",
    "ExpectationChecked",
    "ExpectationResult",
    "Fault",
    "FaultBook",
    "FaultError",
    "Interaction",
    "JUnitReporter",
    "Journal",
    "JournalEntrySeen",
    "JournalReporter",
    "JsonReporter",
    "Mesh",
    "MeshConfigError",
    "MeshOptions",
    "OrderLedger",
    "PortPlan",
    "RecordingProxy",
    "RunEvent",
    "RunFinished",
    "RunPlan",
    "RunResult",
    "RunSetupError",
    "RunStarted",
    "Scenario",
    "ScenarioError",
    "ScenarioFinished",
    "ScenarioResult",
    "ScenarioStarted",
    "Step",
    "StepNote",
    "StepSent",
    "StubServer",
    "StubServerOptions",
    "admin_app",
    "admin_spec",
    "component_env",
    "database_url",
    "http_url",
    "lint_scenario_files",
    "load_bundle",
    "load_scenario",
    "load_scenarios",
    "redact_body",
    "redact_headers",
    "run_scenarios",
    "run_until_signalled",
    "stock_conserved",
    "unreachable_real_services",
]
