"""The platform's Pact files (V4), generated from the scenarios and committed.

Shipped as package data, like the specs: ``contracts check`` and ``contracts verify`` find
them the same way in a checkout and in an installed package.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["pact_dir"]


def pact_dir() -> Path:
    """The folder holding the committed ``CONSUMER-PROVIDER.json`` pact files."""
    return Path(str(resources.files("ecom_harness.contracts")))
