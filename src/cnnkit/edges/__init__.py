"""cnnkit.edges (being built)."""
