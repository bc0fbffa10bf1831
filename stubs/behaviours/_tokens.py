"""Tokens the user, catalog and shipping simulators hand out, and what they share.

* Signed access tokens: :class:`TokenSigner` issues RS256 JWTs (PyJWT) and publishes its
  public key as a JWK, so a token can be checked with the JWKS alone, as the api-gateway
  or any resource server would.
* Page cursors: opaque to clients (base64url of a small JSON object, the form of the
  catalog spec's own ``next_cursor`` example), checked on the way back in so a forged or
  stale cursor is a documented 422 rather than a crash.
* The two answers every simulator here gives alike: ``GET /health`` and RFC 3339 times.

Not a simulator module: it defines no :class:`Simulator` subclass, so discovery skips it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import jwt
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from ecom_harness.stubs._engine import Behaviour
from ecom_harness.stubs._http import StubResponse
from ecom_harness.stubs._simulator import json_response, problem_response
from ecom_harness.stubs._validate_request import ValidRequest

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "TokenSigner",
    "decode_cursor",
    "encode_cursor",
    "health_behaviour",
    "invalid_cursor",
    "page_of",
    "rfc3339",
]

ALGORITHM = "RS256"
DEFAULT_PAGE_SIZE = 20  # specs/CONVENTIONS.md: limit 1-100, default 20
_RSA_KEY_BITS = 2048
_T = TypeVar("_T")


# --- signed access tokens --------------------------------------------------------------------


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_or_generate_key(pem: str | bytes | None) -> rsa.RSAPrivateKey:
    """The RSA key from PEM when given (so tokens survive a restart), else a fresh one."""
    if pem is None:
        return rsa.generate_private_key(public_exponent=65537, key_size=_RSA_KEY_BITS)
    key = serialization.load_pem_private_key(
        pem.encode() if isinstance(pem, str) else pem, password=None
    )
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"private_key_pem must be an RSA key, not {type(key).__name__}")
    return key


def jwk_thumbprint(public_jwk: Mapping[str, Any]) -> str:
    """RFC 7638 thumbprint: a ``kid`` that names the key itself, stable across restarts."""
    members = {name: public_jwk[name] for name in ("e", "kty", "n")}
    canonical = orjson.dumps(members, option=orjson.OPT_SORT_KEYS)
    return _b64url(hashlib.sha256(canonical).digest())


@dataclass(frozen=True, slots=True)
class TokenSigner:
    """Issues and verifies the RS256 access tokens of one issuer for one audience."""

    private_key: rsa.RSAPrivateKey
    kid: str
    issuer: str
    audience: str

    @classmethod
    def create(
        cls, pem: str | bytes | None, *, issuer: str, audience: str, kid: str | None = None
    ) -> TokenSigner:
        """A signer on the key from ``pem`` (or a new key); ``kid`` defaults to the key's
        RFC 7638 thumbprint."""
        key = load_or_generate_key(pem)
        public = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
        return cls(key, kid or jwk_thumbprint(public), issuer, audience)

    def jwk(self) -> dict[str, str]:
        """The public key as the JWK the spec's ``Jwk`` schema describes."""
        public = RSAAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True)
        return {
            "kty": "RSA",
            "kid": self.kid,
            "use": "sig",
            "alg": ALGORITHM,
            "n": str(public["n"]),
            "e": str(public["e"]),
        }

    def sign(self, claims: Mapping[str, Any]) -> str:
        """A compact JWS of ``claims`` with this signer's ``iss`` and ``aud`` and ``kid``."""
        payload = {**claims, "iss": self.issuer, "aud": self.audience}
        return jwt.encode(payload, self.private_key, algorithm=ALGORITHM, headers={"kid": self.kid})

    def verify(
        self, token: str, now: datetime, required: Sequence[str] = ()
    ) -> dict[str, Any] | None:
        """The claims when the signature, ``iss``, ``aud`` and ``exp`` hold at ``now``.

        ``exp`` is checked against ``now`` (the simulator's clock) rather than by PyJWT,
        which would read the wall clock and defeat tests that move time.
        """
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.private_key.public_key(),
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "require": ["exp", "iat", *required],
                },
            )
        except jwt.InvalidTokenError:
            return None
        expires = claims["exp"]
        if not isinstance(expires, int | float) or now.timestamp() >= expires:
            return None
        return claims


# --- page cursors ----------------------------------------------------------------------------


def encode_cursor(position: Mapping[str, Any]) -> str:
    """An opaque cursor for ``position`` (``{"sku": "SKU-2042"}`` -> ``eyJza3Ui...``)."""
    return _b64url(orjson.dumps(dict(position)))


def decode_cursor(cursor: str, field: str, kind: type[_T]) -> _T | None:
    """``position[field]`` of a cursor this service issued, or None when it is not one."""
    try:
        position = orjson.loads(_b64url_decode(cursor))
    except (binascii.Error, ValueError):  # orjson.JSONDecodeError is a ValueError
        return None
    value = position.get(field) if isinstance(position, dict) else None
    # bool is an int: refuse it explicitly so {"seq": true} is not position 1
    if not isinstance(value, kind) or isinstance(value, bool):
        return None
    return value


def page_of(
    rows: Sequence[_T], limit: int, position: Callable[[_T], Mapping[str, Any]]
) -> tuple[Sequence[_T], str | None]:
    """A page from ``limit + 1`` fetched rows: the first ``limit`` and the cursor after
    them, or None when the extra row shows there is nothing more."""
    if len(rows) <= limit:
        return rows, None
    kept = rows[:limit]
    return kept, encode_cursor(position(kept[-1]))


def invalid_cursor(req: ValidRequest) -> StubResponse:
    """The documented 422 for a cursor that this service did not issue."""
    return problem_response(
        422,
        "validation-error",
        title="Validation Error",
        detail="The query parameter cursor is not a cursor from a previous page.",
        instance=req.request.path,
        errors=[{"pointer": "/query/cursor", "message": "unknown or malformed cursor"}],
    )


# --- alike in every simulator ----------------------------------------------------------------


def health_behaviour(component: str) -> Behaviour:
    """``getHealth``: a simulator that answers at all is up."""

    async def health(_req: ValidRequest) -> StubResponse:
        return json_response(200, {"status": "ok", "component": component})

    return health


def rfc3339(moment: datetime) -> str:
    """``2025-03-11T09:15:05Z``: whole seconds in UTC, as the specs' examples write times."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
