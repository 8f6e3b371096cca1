"""`python -m engine` = the `foley` command."""

import sys

from engine.cli import main

sys.exit(main())
