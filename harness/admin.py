"""Placeholder replaced by the admin API module (see harness/mesh.py: admin_app)."""

from __future__ import annotations

from typing import Any


def admin_app(mesh: Any) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return app
