"""Contracts between the platform's components: Pact files checked against the specs,
spec versions compared, providers verified and fuzzed.

Depends on :mod:`ecom_harness.stubs` (specs, schemas, stubs) and, for the committed pact
files, on the data package :mod:`ecom_harness.contracts`; never on the CLI.

Names load on first use (PEP 562): ``run`` reads pact files without importing the
Pact engine, schemathesis or the generators.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ecom_harness._lazy import lazy_exports

if TYPE_CHECKING:
    from .check import check_interaction, check_pacts, default_pact_dir
    from .diff import Change, broken_pacts, diff_specs
    from .findings import RULES, Finding
    from .fuzz import FUZZ_CHECKS, FuzzError, FuzzOptions, fuzz_provider
    from .generate import Generated, GenerateError, generate_pacts, stale_pacts
    from .pacts import PactError, PactFile, PactInteraction, load_pact, load_pacts
    from .results import CaseResult, Summary, write_json, write_junit
    from .revisions import RevisionError, spec_side
    from .served import credentials_for, served_stubs
    from .spec_index import SpecIndex, SpecIndexError
    from .verify import VerifyError, VerifyOptions, verify_providers

_EXPORTS = {
    "CaseResult": ".results",
    "Change": ".diff",
    "FUZZ_CHECKS": ".fuzz",
    "Finding": ".findings",
    "FuzzError": ".fuzz",
    "FuzzOptions": ".fuzz",
    "GenerateError": ".generate",
    "Generated": ".generate",
    "PactError": ".pacts",
    "PactFile": ".pacts",
    "PactInteraction": ".pacts",
    "RULES": ".findings",
    "RevisionError": ".revisions",
    "SpecIndex": ".spec_index",
    "SpecIndexError": ".spec_index",
    "Summary": ".results",
    "VerifyError": ".verify",
    "VerifyOptions": ".verify",
    "broken_pacts": ".diff",
    "check_interaction": ".check",
    "check_pacts": ".check",
    "credentials_for": ".served",
    "default_pact_dir": ".check",
    "diff_specs": ".diff",
    "fuzz_provider": ".fuzz",
    "generate_pacts": ".generate",
    "load_pact": ".pacts",
    "load_pacts": ".pacts",
    "served_stubs": ".served",
    "spec_side": ".revisions",
    "stale_pacts": ".generate",
    "verify_providers": ".verify",
    "write_json": ".results",
    "write_junit": ".results",
}

__all__ = [
    "FUZZ_CHECKS",
    "RULES",
    "CaseResult",
    "Change",
    "Finding",
    "FuzzError",
    "FuzzOptions",
    "GenerateError",
    "Generated",
    "PactError",
    "PactFile",
    "PactInteraction",
    "RevisionError",
    "SpecIndex",
    "SpecIndexError",
    "Summary",
    "VerifyError",
    "VerifyOptions",
    "broken_pacts",
    "check_interaction",
    "check_pacts",
    "credentials_for",
    "default_pact_dir",
    "diff_specs",
    "fuzz_provider",
    "generate_pacts",
    "load_pact",
    "load_pacts",
    "served_stubs",
    "spec_side",
    "stale_pacts",
    "verify_providers",
    "write_json",
    "write_junit",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
