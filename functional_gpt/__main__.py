"""``python -m functional_gpt``: the command line (see ``functional_gpt.cli``)."""

from .cli import main

__all__: list[str] = []

if __name__ == "__main__":
    raise SystemExit(main())
