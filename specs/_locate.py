"""Find the specs that ship with the package.

The specs live in the top-level ``specs/`` folder of the repository and are installed as
the package-data package ``ecom_harness.specs``; ``importlib.resources`` finds them the
same way from an editable install (where it points back into the checkout) and from a
built wheel (where it points into site-packages).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["shipped_documents", "spec_root"]


def spec_root() -> Path:
    """The directory holding ``topology.yaml``, ``openapi/`` and ``asyncapi/``."""
    root = resources.files("ecom_harness.specs")
    # Installed packages are plain directories (no zip imports for this project), so the
    # Traversable is a real path; ``Path(str(...))`` avoids an ``as_file`` temp copy.
    return Path(str(root))


def shipped_documents() -> list[Path]:
    """The shipped documents to lint by default: the OpenAPI and AsyncAPI folders and the
    topology -- not the code beside them (the vendored AsyncAPI meta-schema of the lint
    is JSON too, but no spec)."""
    root = spec_root()
    return [root / "openapi", root / "asyncapi", root / "topology.yaml"]
