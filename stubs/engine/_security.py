"""Check that a request carries the credentials its operation's security requires.

Only presence and form are checked here (a bearer token, basic credentials, an API key
header); whether a token is genuine is the component behaviour's business, as it is for
the real service (the gateway introspects JWTs through user-svc).
"""

from __future__ import annotations

from typing import Any

from ecom_harness.specs import Api, Operation

from ._http import StubRequest

__all__ = ["missing_credentials"]


def _satisfied(scheme: dict[str, Any], request: StubRequest) -> bool:
    kind = scheme.get("type")
    if kind == "http":
        prefix = str(scheme.get("scheme", "")).lower() + " "
        return request.headers.get("authorization", "").lower().startswith(prefix)
    if kind == "apiKey":
        name = str(scheme.get("name", ""))
        where = scheme.get("in")
        if where == "header":
            return bool(request.headers.get(name.lower()))
        if where == "query":
            return bool(request.query.get(name))
        return True  # cookies are not simulated
    return True  # oauth2 / openIdConnect / mutualTLS: not simulated


def missing_credentials(api: Api, operation: Operation, request: StubRequest) -> str | None:
    """None when one of the security alternatives is met, else what is missing."""
    if not operation.security:
        return None
    schemes = api.security_schemes
    for alternative in operation.security:
        if all(_satisfied(schemes.get(name) or {}, request) for name in alternative):
            return None
    wanted = " or ".join(" + ".join(alt) or "none" for alt in operation.security)
    return f"{operation.operation_id} needs credentials: {wanted}"
