"""Strict YAML loading for spec documents.

PyYAML silently keeps the last of two equal mapping keys; in a spec that hides a whole
path or schema, so duplicate keys are an error here. libyaml's C parser is used when
present (several times faster on the specs).
"""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["DuplicateKeyError", "YamlError", "load_yaml"]

_BaseLoader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class YamlError(ValueError):
    """The text is not YAML this project accepts; ``line`` and ``column`` are 1-based."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None):
        super().__init__(message)
        self.line = line
        self.column = column


class DuplicateKeyError(YamlError):
    """A mapping repeats a key."""


class _StrictLoader(_BaseLoader):  # type: ignore[misc]
    """Safe loader that refuses duplicate mapping keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                mark = key_node.start_mark
                raise DuplicateKeyError(f"duplicate key {key!r}", mark.line + 1, mark.column + 1)
            seen.add(key)
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _StrictLoader.construct_mapping
)


def load_yaml(text: str) -> Any:
    """Parse one YAML (or JSON) document, raising :class:`YamlError` with a position."""
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except YamlError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        problem = exc.problem or str(exc)
        if mark is None:
            raise YamlError(problem) from None
        raise YamlError(problem, mark.line + 1, mark.column + 1) from None
    except yaml.YAMLError as exc:
        raise YamlError(str(exc)) from None
