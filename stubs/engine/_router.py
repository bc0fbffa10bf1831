"""Route: which operation a method and path name, or the 404/405 problem saying why none."""

from __future__ import annotations

from ecom_harness.specs import Api, Operation

from ._problems import Problem, problem

__all__ = ["route"]


def route(api: Api, method: str, path: str) -> tuple[Operation, dict[str, str]] | Problem:
    """The operation and its raw path parameters; 405 when the path exists for other
    methods (with ``Allow``), 404 when no path matches."""
    static = api.static_routes.get((method, path))
    if static is not None:
        return static, {}
    for operation in api.templated_routes.get(method, ()):
        match = operation.path_regex.match(path)
        if match is not None:
            return operation, {operation.path_groups[g]: v for g, v in match.groupdict().items()}
    allowed = sorted(
        {op.method for op in api.routes if op.method != method and op.path_regex.match(path)}
    )
    if allowed:
        return problem(
            "method-not-allowed",
            f"{method} is not allowed on {path}",
            headers={"Allow": ", ".join(allowed)},
        )
    return problem("not-found", f"no operation matches {method} {path}")
