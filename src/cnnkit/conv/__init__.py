"""cnnkit.conv (being built)."""
