"""Job wrappers for cleanup (see the owning package for the core)."""
