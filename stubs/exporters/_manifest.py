"""The manifest every export carries (``ecom-harness-export.json``): which generator
made it, in which format, from which spec files (version and SHA-256 each), and which
files it wrote.

It is what makes an output directory recognisably *ours*: a directory with a manifest
may be regenerated (only the files it lists are replaced), one without is a user's and
is never written into. The digest of every file written tells a file the user has
edited since: settings meant for editing (a bundle's ``stub.toml``, its seed files) are
kept, any other edited file stops the export. ``--check`` compares the spec digests
with the current specs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from ecom_harness import __version__

from ._source import ExportError, SpecFile

__all__ = ["MANIFEST", "CheckResult", "Manifest", "check_export", "write_export"]

MANIFEST = "ecom-harness-export.json"


@dataclass(frozen=True, slots=True)
class Manifest:
    format: str
    components: tuple[str, ...]
    specs: dict[str, dict[str, str]]  # relative path -> {title, version, sha256}
    files: dict[str, str]  # relative path -> sha256 of what the export wrote
    generator_version: str = __version__
    kept: tuple[str, ...] = ()  # edited settings files this export left as they were

    def to_json(self) -> bytes:
        return orjson.dumps(
            {
                "generator": "ecom-harness",
                "generator_version": self.generator_version,
                "format": self.format,
                "components": list(self.components),
                "specs": self.specs,
                "files": self.files,
            },
            option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS,
        )

    @classmethod
    def read(cls, directory: Path) -> Manifest | None:
        """The manifest of an earlier export, or None when ``directory`` is not one."""
        path = directory / MANIFEST
        try:
            data: Any = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None
        if not isinstance(data, dict) or data.get("generator") != "ecom-harness":
            return None
        return cls(
            format=str(data.get("format")),
            components=tuple(data.get("components") or ()),
            specs=dict(data.get("specs") or {}),
            files=dict(data.get("files") or {}),
            generator_version=str(data.get("generator_version")),
        )


def spec_entries(files: list[SpecFile]) -> dict[str, dict[str, str]]:
    return {f.relative: {"title": f.title, "version": f.version, "sha256": f.sha256} for f in files}


def _claimable(out: Path) -> Manifest | None:
    """Refuse a directory that is not ours; return the earlier export's manifest, if any."""
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out}: exists and is not a directory")
    if not out.exists() or not any(out.iterdir()):
        return None
    earlier = Manifest.read(out)
    if earlier is None:
        raise ExportError(
            f"--out {out}: exists and is not an earlier export (no {MANIFEST}); "
            "refusing to write into it"
        )
    return earlier


def _edited(out: Path, relative: str, earlier: Manifest) -> bool:
    """Whether a file the earlier export wrote has been changed since."""
    path = out / relative
    return path.is_file() and digest(path.read_bytes()) != earlier.files.get(relative)


def write_export(
    out: Path,
    fmt: str,
    components: tuple[str, ...],
    specs: list[SpecFile],
    files: dict[str, bytes],
    *,
    editable: frozenset[str] = frozenset(),
) -> Manifest:
    """Write ``files`` (relative path -> content) and the manifest into ``out``.

    An earlier export there is replaced file by file: what it wrote and this export
    does not is removed, and a file it did not write is never touched -- an export that
    would overwrite one is refused before anything is written. Files in ``editable``
    that the user changed since are kept as they are.
    """
    earlier = _claimable(out)
    kept: dict[str, str] = {}
    for relative in files:
        target = out / relative
        if not target.exists():
            continue
        if earlier is None or relative not in earlier.files:
            raise ExportError(f"--out {out}: {relative} exists and was not written by an export")
        if _edited(out, relative, earlier):
            if relative not in editable:
                raise ExportError(
                    f"--out {out}: {relative} was edited since the export; "
                    "move it away to regenerate"
                )
            kept[relative] = earlier.files[relative]
    if earlier is not None:
        for relative in earlier.files:
            if relative not in kept and not _edited(out, relative, earlier):
                (out / relative).unlink(missing_ok=True)
    written = {}
    for relative, content in sorted(files.items()):
        if relative in kept:
            continue
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        written[relative] = digest(content)
    manifest = Manifest(
        fmt,
        components,
        spec_entries(specs),
        dict(sorted((written | kept).items())),
        kept=tuple(sorted(kept)),
    )
    (out / MANIFEST).write_bytes(manifest.to_json() + b"\n")
    return manifest


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What ``--check`` found: one line per spec that changed since the export."""

    manifest: Manifest
    stale: list[str] = field(default_factory=list)

    @property
    def up_to_date(self) -> bool:
        return not self.stale


def check_export(directory: Path, root: Path) -> CheckResult:
    """Compare an export's spec digests with the specs under ``root`` now."""
    if not directory.is_dir():
        raise ExportError(f"{directory}: no such directory")
    manifest = Manifest.read(directory)
    if manifest is None:
        raise ExportError(f"{directory}: not an export (no {MANIFEST})")
    stale = []
    for relative, was in sorted(manifest.specs.items()):
        path = root / relative
        if not path.is_file():
            stale.append(f"{relative}: exported from {was.get('version')}, no longer shipped")
            continue
        now = SpecFile.read(root, relative)
        if now.sha256 != was.get("sha256"):
            stale.append(
                f"{relative}: exported from {was.get('title')} {was.get('version')} "
                f"(sha256 {str(was.get('sha256'))[:12]}), now {now.describe()}"
            )
    return CheckResult(manifest, stale)


def digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()
