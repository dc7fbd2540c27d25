"""cnnkit.face (being built)."""
