"""`python -m sim`: run the simulator in the foreground (see sim.cli)."""

import sys

from sim.cli import main

sys.exit(main())
