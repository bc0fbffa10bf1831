"""user-svc: accounts, login, RS256 access tokens, introspection and the JWKS.

State: ``users`` in user-svc's own database (passwords as salted scrypt hashes, emails
unique case-insensitively); sessions in Redis under ``user-svc:session:<session id>``
with a TTL of the token lifetime, so revoking a session (deleting its key) turns every
token of it inactive at once. The users of the platform's seed data (``specs/seed.toml``)
exist from the start and again after a reset, with their seed passwords.

Settings (``settings["user-svc"]``):

=================== ======================================= =================================
key                 default                                 meaning
=================== ======================================= =================================
issuer              ``https://user-svc.ecom.local``         the tokens' ``iss``
audience            ``ecom-api``                            the tokens' ``aud``
token_lifetime      ``900``                                 seconds; ``exp - iat``, Redis TTL
scope               ``profile orders:read orders:write``    the tokens' ``scope``
private_key_pem     none: a 2048-bit RSA key per start      PEM of the RSA signing key
kid                 RFC 7638 thumbprint of the key          the JWT header's / JWK's ``kid``
scrypt_n            ``16384``                               scrypt cost (tests lower it)
=================== ======================================= =================================

Tokens carry ``iss aud sub exp iat jti sid email scope`` (``sid`` is the session id, as
in the spec's example token; ``jti`` a unique id per token).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import os
import uuid
from typing import Any

import orjson
from sqlalchemy import Column, MetaData, Select, String, Table, bindparam, select
from sqlalchemy.exc import IntegrityError

from ecom_harness.specs import load_seed
from ecom_harness.stubs.engine import (
    Behaviour,
    ErrorRenderer,
    Problem,
    StubRequest,
    StubResponse,
    ValidRequest,
)
from ecom_harness.stubs.state import new_id

from ._jwt import TokenSigner
from ._simulator import (
    Simulator,
    health_behaviour,
    json_response,
    not_found,
    problem_response,
    render_problem,
    rfc3339,
)

__all__ = ["UserSimulator", "hash_password", "verify_password"]

SEED_CREATED_AT = "2025-03-01T09:00:00Z"  # the seed users' creation time

DEFAULT_ISSUER = "https://user-svc.ecom.local"
DEFAULT_AUDIENCE = "ecom-api"
DEFAULT_LIFETIME = 900
DEFAULT_SCOPE = "profile orders:read orders:write"
DEFAULT_SCRYPT_N = 1 << 14
SESSION_KEY = "user-svc:session:"
JWKS_CACHE_CONTROL = "public, max-age=300"
_SCRYPT_R, _SCRYPT_P, _SALT_BYTES, _HASH_BYTES = 8, 1, 16, 32
# Claims introspection reports; a token without them is not one of ours.
_REPORTED_CLAIMS = ("sub", "email", "scope", "iss", "aud", "exp", "iat")


# --- passwords ---------------------------------------------------------------------------------


def hash_password(password: str, n: int = DEFAULT_SCRYPT_N) -> str:
    """``scrypt$n$r$p$salt$hash`` with a fresh salt; the parameters travel with the hash
    so a later change of cost still verifies the old ones."""
    salt = os.urandom(_SALT_BYTES)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=_SCRYPT_R, p=_SCRYPT_P, dklen=_HASH_BYTES
    )
    return f"scrypt${n}${_SCRYPT_R}${_SCRYPT_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` produces ``stored``, compared in constant time."""
    _, n, r, p, salt, digest = stored.split("$")
    expected = bytes.fromhex(digest)
    actual = hashlib.scrypt(
        password.encode(),
        salt=bytes.fromhex(salt),
        n=int(n),
        r=int(r),
        p=int(p),
        dklen=len(expected),
    )
    return hmac.compare_digest(actual, expected)


# --- the simulator -----------------------------------------------------------------------------


def _render_error(found: Problem, request: StubRequest) -> StubResponse:
    """The engine's errors as problem+json (422 for a rejected request, as everywhere)."""
    return render_problem(found, request)


class UserSimulator(Simulator):
    """Accounts in the database, sessions in Redis, tokens signed with one RSA key."""

    component = "user-svc"
    metadata = MetaData()
    users = Table(
        "users",
        metadata,
        Column("user_id", String(40), primary_key=True),
        Column("email", String(254), nullable=False),
        Column("email_key", String(254), nullable=False, unique=True),  # lower-cased
        Column("name", String(200), nullable=False),
        Column("phone", String(20)),
        Column("password_hash", String(200), nullable=False),
        Column("created_at", String(40), nullable=False),
    )
    # built once (see inventory-svc's statements)
    _by_id = select(users).where(users.c.user_id == bindparam("w_key"))
    _by_email = select(users).where(users.c.email_key == bindparam("w_key"))

    signer: TokenSigner  # from start() on

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        settings = self.ctx.settings
        self.lifetime = int(settings.get("token_lifetime", DEFAULT_LIFETIME))
        self.scope = str(settings.get("scope", DEFAULT_SCOPE))
        self.scrypt_n = int(settings.get("scrypt_n", DEFAULT_SCRYPT_N))
        # Making an RSA key takes tens of milliseconds without the GIL: it runs in a
        # thread while the other stubs are built and started (start waits for it).
        self._signing = asyncio.get_running_loop().run_in_executor(
            None,
            functools.partial(
                TokenSigner.create,
                settings.get("private_key_pem"),
                issuer=str(settings.get("issuer", DEFAULT_ISSUER)),
                audience=str(settings.get("audience", DEFAULT_AUDIENCE)),
                kid=settings.get("kid"),
            ),
        )
        self._decoy = ""  # a hash to check unknown emails against (see create_session)
        self._seed_rows: list[dict[str, Any]] = []

    def behaviours(self) -> dict[str, Behaviour]:
        return {
            "createUser": self.create_user,
            "getUser": self.get_user,
            "createSession": self.create_session,
            "introspectToken": self.introspect_token,
            "getJwks": self.get_jwks,
            "getHealth": health_behaviour(self.component),
        }

    def render_error(self) -> ErrorRenderer:
        return _render_error

    async def start(self) -> None:
        await super().start()
        self.signer = await self._signing
        self._decoy = await asyncio.to_thread(hash_password, "decoy-password", self.scrypt_n)
        self._seed_rows = [
            {
                "user_id": user["user_id"],
                "email": user["email"],
                "email_key": user["email"].lower(),
                "name": user["name"],
                "phone": user["phone"],
                "password_hash": await asyncio.to_thread(
                    hash_password, user["password"], self.scrypt_n
                ),
                "created_at": SEED_CREATED_AT,
            }
            for user in load_seed().users
        ]
        await self._seed_users()

    async def _seed_users(self) -> None:
        """The seed's users (specs/seed.toml), so the spec examples can log in."""
        async with self.ctx.db.begin() as conn:
            for row in self._seed_rows:
                gone = self.users.c.user_id == row["user_id"]
                await conn.execute(self.users.delete().where(gone))
                await conn.execute(self.users.insert().values(**row))

    async def reset(self) -> None:
        await super().reset()
        await self._seed_users()
        keys = [key async for key in self.ctx.redis.scan_iter(match=SESSION_KEY + "*")]
        if keys:
            await self.ctx.redis.delete(*keys)

    async def revoke_session(self, session_id: str) -> bool:
        """End a session (logout, or a harness fault): its tokens introspect inactive.
        True when there was such a session."""
        return bool(await self.ctx.redis.delete(SESSION_KEY + session_id))

    # --- users ---

    async def create_user(self, req: ValidRequest) -> StubResponse:
        body = req.body
        password_hash = await asyncio.to_thread(hash_password, body["password"], self.scrypt_n)
        user = {
            "user_id": new_id("usr"),
            "email": body["email"],
            "name": body["name"],
            "phone": body.get("phone"),
            "created_at": rfc3339(self.ctx.clock()),
        }
        row = user | {"email_key": body["email"].lower(), "password_hash": password_hash}
        try:
            await self.ctx.db.execute(self.users.insert().values(**row))
        except IntegrityError:  # the unique email_key: same address, any case
            return problem_response(
                409,
                "conflict",
                title="Email already registered",
                detail=f"An account with email {body['email']} already exists.",
                instance=req.request.path,
            )
        return json_response(201, user)

    async def get_user(self, req: ValidRequest) -> StubResponse:
        user_id = req.params["path"]["userId"]
        row = await self._user_where(self._by_id, user_id)
        if row is None:
            return not_found(req, f"User {user_id}")
        return json_response(200, _public(row))

    async def _user_where(self, query: Select[Any], key: str) -> dict[str, Any] | None:
        """The user ``query`` (``_by_id`` or ``_by_email``) finds for ``key``."""
        async with self.ctx.db.connect() as conn:
            row = (await conn.execute(query, {"w_key": key})).mappings().first()
        return dict(row) if row is not None else None

    # --- sessions and tokens ---

    async def create_session(self, req: ValidRequest) -> StubResponse:
        email, password = req.body["email"], req.body["password"]
        user = await self._user_where(self._by_email, email.lower())
        # An unknown email costs one hash too, so timing does not tell which emails exist.
        stored = user["password_hash"] if user is not None else self._decoy
        valid = await asyncio.to_thread(verify_password, password, stored)
        if user is None or not valid:
            return problem_response(
                401,
                "unauthorized",
                title="Invalid credentials",
                detail="The email or password is incorrect.",
                instance=req.request.path,
            )
        session_id = new_id("ses")
        token = self._issue(user, session_id)
        await self.ctx.redis.set(
            SESSION_KEY + session_id,
            orjson.dumps({"user_id": user["user_id"]}).decode(),
            ex=self.lifetime,
        )
        body = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self.lifetime,
            "session_id": session_id,
        }
        return json_response(201, body)

    def _issue(self, user: dict[str, Any], session_id: str) -> str:
        issued = int(self.ctx.clock().timestamp())
        return self.signer.sign(
            {
                "sub": user["user_id"],
                "email": user["email"],
                "scope": self.scope,
                "sid": session_id,
                "jti": uuid.uuid4().hex,
                "iat": issued,
                "exp": issued + self.lifetime,
            }
        )

    async def introspect_token(self, req: ValidRequest) -> StubResponse:
        """Active only for our signature, issuer and audience, unexpired by ctx.clock,
        and a session that still exists; anything else is ``{"active": false}``."""
        claims = self.signer.verify(
            req.body["token"], self.ctx.clock(), required=(*_REPORTED_CLAIMS, "sid")
        )
        if claims is None or not await self._session_holds(claims):
            return json_response(200, {"active": False})
        reported = {name: claims[name] for name in _REPORTED_CLAIMS}
        return json_response(200, {"active": True, **reported, "session_id": claims["sid"]})

    async def _session_holds(self, claims: dict[str, Any]) -> bool:
        stored = await self.ctx.redis.get(SESSION_KEY + str(claims["sid"]))
        return stored is not None and orjson.loads(stored).get("user_id") == claims["sub"]

    async def get_jwks(self, _req: ValidRequest) -> StubResponse:
        return json_response(
            200, {"keys": [self.signer.jwk()]}, headers={"Cache-Control": JWKS_CACHE_CONTROL}
        )


def _public(row: dict[str, Any]) -> dict[str, Any]:
    """A user as the API shows it: no hash, no lookup key."""
    return {name: row[name] for name in ("user_id", "email", "name", "phone", "created_at")}
