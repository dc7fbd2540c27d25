"""cnnkit.train (being built)."""
