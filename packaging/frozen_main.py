"""The frozen app's one entry point: `foley-editor [VIDEO|PROJECT]` is the editor, `foley ...` (a link to the same
executable, or `foley-editor foley ...` where links are not at hand) is the command line.

One executable for both keeps one copy of the Python modules (PyInstaller embeds its module archive in each
executable it makes) and one analysis at build time; packaging/foley.spec builds it, packaging/build_app.sh links
`foley` to it.
"""

from __future__ import annotations

import os
import sys

CLI_NAMES = ("foley", "foley-cli")


def main() -> int:
    name = os.path.splitext(os.path.basename(sys.argv[0]))[0].lower()
    args = sys.argv[1:]
    if name in CLI_NAMES or (args and args[0] == "foley"):
        if name not in CLI_NAMES:
            args = args[1:]
        sys.argv[0] = "foley"
        from engine.cli import main as cli_main

        return cli_main(args)
    from foley_app.__main__ import main as app_main

    return app_main(args)


if __name__ == "__main__":
    sys.exit(main())
