"""`python -m tikvops` runs the command line."""

import sys

from tikvops.cli import main

sys.exit(main())
