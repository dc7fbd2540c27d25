"""``python -m cnnkit`` (and ``torchrun -m cnnkit``) runs the command-line tool."""

from cnnkit.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
