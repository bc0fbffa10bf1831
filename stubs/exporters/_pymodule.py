"""What the two Python exports (``responses``, ``httpx``) share: the module name of a
component, its operation table, and the block naming the spec files they were made from."""

from __future__ import annotations

from pathlib import Path

from ecom_harness.specs import load_api

from ._source import Sources, SpecFile

__all__ = ["module_name", "operations_table", "provenance", "specs_table"]


def module_name(component: str, suffix: str) -> str:
    """``order-svc`` + ``responses`` -> ``order_svc_responses``."""
    return f"{component.replace('-', '_')}_{suffix}"


def operations_table(path: Path) -> str:
    """``(method, path template, operationId)`` per operation, as Python source lines."""
    api = load_api(path)
    rows = sorted((op.path, op.method, op.operation_id) for op in api.operations.values())
    return "\n".join(f"    ({m!r}, {p!r}, {o!r})," for p, m, o in rows)


def specs_table(sources: Sources) -> str:
    """component -> spec file inside the export, as Python source lines."""
    return "\n".join(
        f"    {name!r}: _HERE / 'specs' / {spec.relative!r},"
        for name, spec in sources.openapi.items()
    )


def asyncapi_path(sources: Sources) -> str:
    """The events document inside the export, as a Python expression."""
    if sources.asyncapi is None:
        return "None"
    return f"_HERE / 'specs' / {sources.asyncapi.relative!r}"


def provenance(spec: SpecFile) -> str:
    return (
        f"SPEC_FILE = {spec.relative!r}\n"
        f"SPEC_VERSION = {spec.version!r}\n"
        f"SPEC_SHA256 = {spec.sha256!r}"
    )
