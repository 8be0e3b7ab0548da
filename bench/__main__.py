"""`python -m bench` is the same entry as the `tppbench` script."""

import sys

from bench.cli import main

sys.exit(main())
