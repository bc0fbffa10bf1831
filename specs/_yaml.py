"""Strict YAML loading for spec documents: the data model of JSON, nothing more.

Specs are JSON documents written as YAML, and everything downstream (JSON Schema
validators, JSON pointers) assumes JSON data. So:

* mapping keys are strings: a scalar key keeps its text (``200:`` is ``"200"``,
  ``yes:`` is ``"yes"``), and a list or mapping used as a key is an error;
* timestamps stay the strings they were written as (``2024-01-01``), as JSON has no
  date type; ``!!binary``, ``!!set`` and other non-JSON types are errors;
* duplicate keys are errors (PyYAML would silently keep the last one, hiding a whole
  path or schema); merge keys (``<<: *base``) are resolved first;
* an alias that contains itself is an error, not an endless structure.

libyaml's C parser is used when present (several times faster on the specs).
"""

from __future__ import annotations

from typing import Any

import yaml

from ._parse_cache import cached_parse

__all__ = ["DuplicateKeyError", "YamlError", "load_yaml"]

_BaseLoader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_NON_JSON_TAGS = ("binary", "set", "omap", "pairs")


class YamlError(ValueError):
    """The text is not YAML this project accepts; ``line`` and ``column`` are 1-based."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None):
        super().__init__(message)
        self.line = line
        self.column = column


class DuplicateKeyError(YamlError):
    """A mapping repeats a key."""


def _error_at(node: yaml.Node, message: str, kind: type[YamlError] = YamlError) -> YamlError:
    return kind(message, node.start_mark.line + 1, node.start_mark.column + 1)


class _JsonLoader(_BaseLoader):  # type: ignore[misc]
    """Safe loader restricted to JSON's data model (see the module docstring)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[str, Any]:
        self.flatten_mapping(node)
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise _error_at(
                    key_node, "a mapping key must be a plain string, not a list or mapping"
                )
            key = str(key_node.value)
            if key in mapping:
                raise _error_at(key_node, f"duplicate key {key!r}", DuplicateKeyError)
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping

    def construct_timestamp_text(self, node: yaml.ScalarNode) -> str:
        return str(node.value)

    def refuse_non_json(self, node: yaml.Node) -> Any:
        raise _error_at(node, f"the YAML type {node.tag} has no JSON equivalent")


_JsonLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _JsonLoader.construct_mapping
)
_JsonLoader.add_constructor("tag:yaml.org,2002:timestamp", _JsonLoader.construct_timestamp_text)
for _tag in _NON_JSON_TAGS:
    _JsonLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", _JsonLoader.refuse_non_json)


def _refuse_cycles(node: Any, path: set[int]) -> None:
    if isinstance(node, dict | list):
        if id(node) in path:
            raise YamlError(
                "an alias refers to a node that contains it (a cycle); JSON cannot represent that"
            )
        path.add(id(node))
        for child in node.values() if isinstance(node, dict) else node:
            _refuse_cycles(child, path)
        path.discard(id(node))


def load_yaml(text: str) -> Any:
    """Parse one YAML (or JSON) document, raising :class:`YamlError` with a position.
    A large document parsed before is read from the parse cache (_parse_cache.py)."""
    return cached_parse(text, _parse)


def _parse(text: str) -> Any:
    try:
        data = yaml.load(text, Loader=_JsonLoader)  # a SafeLoader subclass
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
    except RecursionError:
        raise YamlError("the document nests too deeply") from None
    _refuse_cycles(data, set())
    return data
