"""Which lint rules apply, and how loud: the project's config, as Redocly and Spectral
users expect one.

Correctness rules (a broken structure, a dangling ``$ref``, an example that breaks its
schema...) apply to every document. The platform's house conventions (lowerCamelCase
operationIds, named examples, no bare objects, self-contained documents) apply to the
platform's own specs -- those that name their component in ``info.x-component`` -- and
to anyone else's only where a config asks for them.

The config is ``[tool.ecom-harness.lint]`` in ``pyproject.toml``, or the ``[lint]`` table
of its own file ``ecom-harness.toml`` (looked up in the working directory; ``specs lint
--config FILE`` names one)::

    [tool.ecom-harness.lint]
    house-conventions = true          # apply them to every spec (false: to none)
    [tool.ecom-harness.lint.rules]
    operation-id-case = "warn"        # error | warn | off
    example-invalid = "off"

Only errors fail the run (exit 1); warnings are printed and counted.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "CONFIG_FILE",
    "HOUSE_RULES",
    "KNOWN_RULES",
    "SEVERITIES",
    "LintConfig",
    "LintConfigError",
    "load_lint_config",
]

CONFIG_FILE = "ecom-harness.toml"
SEVERITIES = ("error", "warn", "off")
# The platform's own conventions (specs/CONVENTIONS.md), not correctness.
HOUSE_RULES = frozenset(
    {
        "operation-id-case",
        "example-missing",
        "schema-bare-object",
        "ref-external",
        # the platform's own conventions (specs/CONVENTIONS.md), not correctness
        "engine-answers",
        "integer-bounds",
        "shared-definition",
    }
)
KNOWN_RULES = HOUSE_RULES | frozenset(
    {
        "yaml",
        "yaml-duplicate-key",
        "document",
        "internal",
        "openapi",
        "openapi-version",
        "operation-id",
        "operation-id-duplicate",
        "ref-dangling",
        "schema-invalid",
        "schema-required-unknown",
        "example-invalid",
        "asyncapi",
        "asyncapi-version",
        "asyncapi-action",
        "asyncapi-channel-ref",
        "asyncapi-component",
        "asyncapi-message-ref",
        "asyncapi-unrouted-message",
        "topology-structure",
        "topology-client-edge",
        "topology-component-name",
        "topology-database",
        "topology-duplicate-edge",
        "topology-edge-spec",
        "topology-external-edge",
        "topology-kafka-only",
        "topology-protocol",
        "topology-spec",
        "topology-unknown-component",
        "spec",
    }
)


class LintConfigError(ValueError):
    """A config that cannot be used; the message names the file and the key."""


@dataclass(frozen=True, slots=True)
class LintConfig:
    """Severity per rule. ``house`` None applies the house conventions to the platform's
    own specs only; True to every spec; False to none."""

    rules: Mapping[str, str] = field(default_factory=dict)
    house: bool | None = None
    source: str | None = None  # the file it came from, for messages

    def severity(self, rule: str, *, own: bool) -> str:
        """``error``, ``warn`` or ``off`` for a problem of ``rule`` in a document that is
        (``own``) or is not one of the platform's specs."""
        if rule in self.rules:
            return self.rules[rule]
        applies_house = own if self.house is None else self.house
        if rule in HOUSE_RULES and not applies_house:
            return "off"
        return "error"


def _table(data: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if not isinstance(data, Mapping) or key not in data:
            return None
        data = data[key]
    return data


def _parse(found: Any, shown: str, where: str) -> LintConfig:
    if not isinstance(found, Mapping):
        raise LintConfigError(f"{shown}: [{where}] must be a table")
    unknown = sorted(set(found) - {"rules", "house-conventions"})
    if unknown:
        raise LintConfigError(
            f"{shown}: [{where}] has unknown key(s) {', '.join(unknown)} "
            "(known: house-conventions, rules)"
        )
    house = found.get("house-conventions")
    if house is not None and not isinstance(house, bool):
        raise LintConfigError(f"{shown}: {where}.house-conventions must be true or false")
    rules = found.get("rules", {})
    if not isinstance(rules, Mapping):
        raise LintConfigError(f"{shown}: [{where}.rules] must be a table of rule = severity")
    for rule, severity in rules.items():
        if rule not in KNOWN_RULES:
            raise LintConfigError(
                f"{shown}: {where}.rules: unknown rule '{rule}' "
                f"(known: {', '.join(sorted(KNOWN_RULES))})"
            )
        if severity not in SEVERITIES:
            raise LintConfigError(
                f"{shown}: {where}.rules.{rule} must be one of {', '.join(SEVERITIES)}, "
                f"not {severity!r}"
            )
    return LintConfig(dict(rules), house, shown)


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise LintConfigError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise LintConfigError(f"{path}: not valid TOML: {exc}") from None


def load_lint_config(path: Path | None = None, directory: Path | None = None) -> LintConfig:
    """The config of ``path`` (a ``pyproject.toml`` or an ``ecom-harness.toml``), else
    of those files in ``directory`` (default: the working directory), else the default:
    every rule an error, house conventions for the platform's own specs."""
    candidates = [path] if path is not None else []
    if path is None:
        where = directory or Path.cwd()
        candidates = [where / CONFIG_FILE, where / "pyproject.toml"]
    for candidate in candidates:
        if path is None and not candidate.is_file():
            continue
        data = _read(candidate)
        if candidate.name == "pyproject.toml":
            found = _table(data, ("tool", "ecom-harness", "lint"))
            if found is None:
                if path is not None:
                    raise LintConfigError(f"{candidate}: no [tool.ecom-harness.lint] table")
                continue
            return _parse(found, str(candidate), "tool.ecom-harness.lint")
        found = _table(data, ("lint",))
        if found is None:
            raise LintConfigError(f"{candidate}: no [lint] table")
        return _parse(found, str(candidate), "lint")
    return LintConfig()
