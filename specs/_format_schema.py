"""The JSON Schema of a file format (a topology, an AsyncAPI document, a scenario), with
the messages a user needs when a file breaks it.

jsonschema-rs decides whether a file is valid, several times faster than the pure-Python
``jsonschema``; most files are, and never pay for the Python validator or its import.
A broken one gets python-jsonschema's errors, each reduced to its most telling cause
(``best_match``: a misspelt key rather than "not valid under any of the given schemas").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jsonschema_rs
    from jsonschema.exceptions import ValidationError
    from jsonschema.protocols import Validator

__all__ = ["FormatSchema"]


class FormatSchema:
    """A format's schema (draft 2020-12, or draft 7 with ``draft7``)."""

    def __init__(self, schema: Mapping[str, Any], *, draft7: bool = False):
        self.schema, self._draft7 = schema, draft7

    @cached_property
    def _fast(self) -> jsonschema_rs.Validator:
        import jsonschema_rs  # on first use: `topology --help` loads this module, no validator

        return jsonschema_rs.validator_for(dict(self.schema))

    @cached_property
    def _explaining(self) -> Validator:
        from jsonschema import Draft7Validator, Draft202012Validator

        return (Draft7Validator if self._draft7 else Draft202012Validator)(self.schema)

    def problems(
        self, data: Any, order: Callable[[ValidationError], Any] | None = None
    ) -> list[ValidationError]:
        """The most telling cause of each way ``data`` breaks the schema (none when it is
        valid), in ``order`` of the validator's errors if given."""
        if self._fast.is_valid(data):
            return []
        from jsonschema.exceptions import best_match

        errors = list(self._explaining.iter_errors(data))
        if order is not None:
            errors.sort(key=order)
        return [best_match([error]) for error in errors]
