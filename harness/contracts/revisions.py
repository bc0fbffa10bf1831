"""One side of ``contracts diff``: a spec file, a specs folder, or a git revision of ``specs/``.

A revision is exported with ``git archive`` into a temporary folder, so the same loader
reads every side; nothing in the working tree changes.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["RevisionError", "spec_side"]


class RevisionError(ValueError):
    """Neither a path nor a git revision: the message says which argument and why."""


def _git(*args: str, cwd: Path) -> bytes:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, check=False, timeout=60)
    except FileNotFoundError:
        raise RevisionError("git is not installed") from None
    if done.returncode != 0:
        raise RevisionError(
            done.stderr.decode(errors="replace").strip().splitlines()[-1:][0]
            if done.stderr
            else "git failed"
        )
    return done.stdout


@contextmanager
def spec_side(arg: str, other_file: Path | None = None, cwd: Path | None = None) -> Iterator[Path]:
    """The folder (or file) holding the specs ``arg`` names.

    ``arg`` is a path if one exists by that name, else a git revision. With a revision and
    ``other_file`` (the other side is a single file), that file as it is at the revision.
    """
    where = cwd or Path.cwd()
    path = Path(arg)
    if path.exists():
        yield path
        return
    try:
        top = Path(_git("rev-parse", "--show-toplevel", cwd=where).decode().strip())
        _git("rev-parse", "--verify", "--quiet", f"{arg}^{{commit}}", cwd=where)
    except RevisionError:
        raise RevisionError(
            f"'{arg}' is neither a spec file or folder nor a git revision"
        ) from None
    if other_file is not None:
        member = other_file.resolve().relative_to(top).as_posix()
    else:
        member = (where.resolve() / "specs").relative_to(top).as_posix()
    try:
        archive = _git("archive", "--format=tar", arg, member, cwd=top)
    except RevisionError as exc:
        raise RevisionError(f"{arg}: no '{member}' at that revision ({exc})") from None
    with tempfile.TemporaryDirectory(prefix="ecom-diff-") as tmp:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        yield Path(tmp) / member
