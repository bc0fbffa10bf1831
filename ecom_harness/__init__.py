"""ecom-harness: contract-first specs, spec-driven stubs and a scenario harness.

Four layers that depend one way only, ``cli -> harness -> stubs -> specs``; the spec
documents ship as package data of ``ecom_harness.specs``, beside the code that reads them.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
