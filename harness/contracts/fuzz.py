"""``contracts fuzz``: a provider's service tested against its own spec with schemathesis,
used as a library (its engine and event stream, not its CLI).

Every operation gets the spec's examples and generated valid requests; the stateful phase
chains operations through the spec's links (and the links schemathesis infers from the
schema, such as an id answered by one operation and taken by another). Every answer is
checked: no server error, a documented status, a documented media type and headers, a
body that keeps its schema. Each finished schemathesis scenario becomes one
:class:`CaseResult`, so the console, JSON and JUnit reporters are those of ``verify``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .results import CaseResult

__all__ = ["FUZZ_CHECKS", "FuzzError", "FuzzOptions", "fuzz_provider"]

# The checks of the issue: server errors, undocumented statuses (and media types and
# headers), answers that break the schema.
FUZZ_CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)


class FuzzError(RuntimeError):
    """The run could not start (unreachable service, unusable spec): one line."""


@dataclass(frozen=True, slots=True)
class FuzzOptions:
    provider: str
    url: str
    spec: Path
    headers: dict[str, str] = field(default_factory=dict)
    max_examples: int = 5
    stateful_steps: int = 20
    seed: int | None = 0


def _config(options: FuzzOptions) -> Any:
    from schemathesis.config import SchemathesisConfig

    checks: dict[str, Any] = {"enabled": False}
    checks.update({name: {"enabled": True} for name in FUZZ_CHECKS})
    data: dict[str, Any] = {
        "headers": dict(options.headers),
        "workers": 1,
        "generation": {
            "max-examples": options.max_examples,
            "mode": "positive",  # a correct provider answers valid requests as documented
            "database": "none",
        },
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": False},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": True, "max-steps": options.stateful_steps},
        },
        "checks": checks,
    }
    if options.seed is not None:
        data["seed"] = options.seed
    return SchemathesisConfig.from_dict(data)


def fuzz_provider(options: FuzzOptions) -> Iterator[CaseResult]:
    """Run schemathesis against ``options.url``; yield a result per finished scenario."""
    import httpx
    import schemathesis
    from schemathesis.engine import events, from_schema

    try:  # a service that cannot be reached is a set-up error, not a hundred failures
        httpx.get(options.url, timeout=5)
    except httpx.TransportError as exc:
        raise FuzzError(f"{options.url}: the service does not answer ({exc})") from None
    try:
        schema = schemathesis.openapi.from_path(options.spec, config=_config(options))
        schema.config.update(base_url=options.url)
    except Exception as exc:  # noqa: BLE001 - schemathesis raises many kinds for a bad spec
        raise FuzzError(f"{options.spec}: schemathesis cannot use it: {exc}") from None
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            result = _scenario_result(options.provider, event)
            if result is not None:
                yield result
        elif isinstance(event, events.NonFatalError):
            yield CaseResult(
                options.provider,
                event.label,
                passed=False,
                message=f"error: {type(event.value).__name__}: {event.value}".splitlines()[0],
            )
        elif isinstance(event, events.FatalError):
            raise FuzzError(f"{options.url}: {event.exception}".splitlines()[0])


def _scenario_result(provider: str, event: Any) -> CaseResult | None:
    from schemathesis.engine import Status

    if event.status == Status.SKIP:
        return None
    phase = event.phase.value if hasattr(event.phase, "value") else str(event.phase)
    label = event.label or "sequences along the links"
    recorder = event.recorder
    details: list[str] = []
    titles: list[str] = []
    for case_id, checks in recorder.checks.items():
        for check in checks:
            if check.failure_info is None:
                continue
            failure = check.failure_info.failure
            case = recorder.cases[case_id].value
            interaction = recorder.interactions.get(case_id)
            status = (
                interaction.response.status_code if interaction and interaction.response else "-"
            )
            title = f"{check.name}: {failure.title}"
            if title not in titles:
                titles.append(title)
            message = " ".join(str(failure.message).split())[:300]
            details.append(f"{case.method} {case.formatted_path} -> {status}: {title}: {message}")
    passed = event.status == Status.SUCCESS
    return CaseResult(
        group=provider,
        name=f"{phase} {label}",
        passed=passed,
        message="; ".join(titles) if not passed else f"{len(recorder.cases)} requests",
        details=tuple(details[:10]),
        duration_ms=event.elapsed_time * 1000,
    )
