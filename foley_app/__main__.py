"""`foley-app [VIDEO|PROJECT]` and `python -m foley_app`: start the Foley editor."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from foley_app.app import run

    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
