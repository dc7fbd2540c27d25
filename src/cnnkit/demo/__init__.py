"""The ``cnnkit demo`` report: one module per capability section, assembled by ``report``."""
