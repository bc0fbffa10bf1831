"""ecom-harness: contract-first specs, spec-driven stubs and a scenario harness.

The code lives in three layers that depend one way only, ``cli -> harness -> stubs``;
the specs ship as package data under ``ecom_harness.specs``.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
