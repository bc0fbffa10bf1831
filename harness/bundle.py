"""Serving a stub bundle (``ecom-harness stubs serve --bundle DIR``): its manifest says
which components it holds and which spec files, ``stub.toml`` how to serve them.

Everything comes from the bundle itself -- its own copies of the specs, its seed files
-- so it runs the same wherever it was copied, with only ``ecom-harness`` installed.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import orjson

from ecom_harness.stubs import Backends
from ecom_harness.stubs.exporters import MANIFEST, SETTINGS_FILE, Manifest

from .faults import Fault, FaultError
from .stub_server import StubServerOptions

__all__ = ["BundleError", "load_bundle"]


class BundleError(ValueError):
    """A bundle that cannot be served; the message names the file and the key."""


def _number(where: str, value: Any) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise BundleError(f"{where}: must be a number >= 0, not {value!r}")
    return float(value)


def _read_settings(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{path}: missing") from None
    except tomllib.TOMLDecodeError as exc:
        raise BundleError(f"{path}: {exc}") from None


def _seeds(directory: Path, table: Any, shown: str) -> dict[str, Any]:
    seeds = {}
    for name, file in (table or {}).items():
        path = directory / str(file)
        try:
            seeds[name] = orjson.loads(path.read_bytes())
        except OSError as exc:
            raise BundleError(f"{shown}#/seed/{name}: cannot read {file}: {exc.strerror}") from None
        except orjson.JSONDecodeError as exc:
            raise BundleError(f"{shown}#/seed/{name}: {file} is not JSON: {exc}") from None
    return seeds


def load_bundle(
    directory: Path,
    *,
    host: str | None = None,
    port: int | None = None,
    backends: Backends | None = None,
) -> StubServerOptions:
    """The serving options a bundle asks for; ``host``/``port`` override ``stub.toml``."""
    manifest = Manifest.read(directory)
    if manifest is None or manifest.format != "bundle":
        raise BundleError(f"{directory}: not a stub bundle (no bundle {MANIFEST})")
    shown = str(directory / SETTINGS_FILE)
    settings = _read_settings(directory / SETTINGS_FILE)
    specs = {
        str(entry.get("title")): directory / "specs" / relative
        for relative, entry in manifest.specs.items()
        if relative.startswith("openapi/")
    }
    latency: dict[str, float] = {}
    faults: dict[str, Fault] = {}
    components = settings.get("components") or {}
    base_latency = _number(f"{shown}#/latency_ms", settings.get("latency_ms", 0))
    for name in manifest.components:
        own = components.get(name) or {}
        latency[name] = _number(
            f"{shown}#/components/{name}/latency_ms", own.get("latency_ms", base_latency)
        )
        if "fault" in own:
            try:
                faults[name] = Fault.from_dict(dict(own["fault"]))
            except (FaultError, TypeError, ValueError) as exc:
                raise BundleError(f"{shown}#/components/{name}/fault: {exc}") from None
    unknown = set(components) - set(manifest.components)
    if unknown:
        raise BundleError(f"{shown}#/components: not in this bundle: {', '.join(sorted(unknown))}")
    chosen_port = settings.get("port", 0) if port is None else port
    if not isinstance(chosen_port, int) or not 0 <= chosen_port <= 65535:
        raise BundleError(f"{shown}#/port: must be a port number, not {chosen_port!r}")
    asyncapi = next(
        (directory / "specs" / r for r in manifest.specs if r.startswith("asyncapi/")), None
    )
    return StubServerOptions(
        served=manifest.components,
        specs=specs,
        asyncapi=asyncapi,
        host=host or str(settings.get("host", "127.0.0.1")),
        port=chosen_port,
        latency_ms=latency,
        faults=faults,
        seeds=_seeds(directory, settings.get("seed"), shown),
        settings=dict(settings.get("settings") or {}),
        backends=backends or Backends(),
    )
