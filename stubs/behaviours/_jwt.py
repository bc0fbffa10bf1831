"""Signed access tokens: :class:`TokenSigner` issues RS256 JWTs (PyJWT) and publishes its
public key as a JWK, so a token can be checked with the JWKS alone, as the api-gateway or
any resource server would.

Not a simulator module: it defines no :class:`Simulator` subclass, so discovery skips it.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jwt
import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

__all__ = ["ALGORITHM", "TokenSigner", "jwk_thumbprint", "load_or_generate_key"]

ALGORITHM = "RS256"
_RSA_KEY_BITS = 2048


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
