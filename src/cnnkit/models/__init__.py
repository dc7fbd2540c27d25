"""cnnkit.models (being built)."""
