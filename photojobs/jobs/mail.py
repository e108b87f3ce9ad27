"""Job wrappers for mail (see the owning package for the core)."""
