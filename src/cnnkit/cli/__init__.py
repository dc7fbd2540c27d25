"""The ``cnnkit`` command line: one module per command group. The CLI only parses arguments and
calls the library."""
