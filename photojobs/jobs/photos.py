"""Job wrappers for photos (see the owning package for the core)."""
