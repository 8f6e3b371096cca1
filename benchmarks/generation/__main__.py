"""`python -m benchmarks.generation`: the run (and, with the hidden `--worker`, one measurement subprocess)."""

import sys

from benchmarks.generation.cli import main

sys.exit(main())
