"""Job wrappers for archives (see the owning package for the core)."""
