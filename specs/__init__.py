"""The platform's specs, shipped as package data: see :func:`ecom_harness.stubs.spec_root`."""
