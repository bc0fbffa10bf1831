"""Stubs for other teams, in the form their own stack uses: a self-contained bundle,
WireMock mappings, a ``responses`` module, an ``httpx`` transport, typed event models.

Every export names the spec files (version and SHA-256) it was made from in its
manifest, and :func:`check` tells whether an export is stale against the current specs.
:class:`LocalStubs` is what the ``responses`` and ``httpx`` exports run on.
"""

from ._bundle import BUNDLE_COMMAND, SETTINGS_FILE
from ._generate import FORMATS, check, generate
from ._manifest import MANIFEST, CheckResult, Manifest
from ._runtime import BackgroundLoop, LocalStubs, encode_body
from ._source import ExportError

__all__ = [
    "BUNDLE_COMMAND",
    "FORMATS",
    "MANIFEST",
    "SETTINGS_FILE",
    "BackgroundLoop",
    "CheckResult",
    "ExportError",
    "LocalStubs",
    "Manifest",
    "check",
    "encode_body",
    "generate",
]
