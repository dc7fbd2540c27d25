"""cnnkit.style (being built)."""
