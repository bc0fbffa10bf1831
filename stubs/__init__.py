"""stubs layer."""
