"""``python -m tempsweep.cli``."""

import sys

from tempsweep.cli import main

sys.exit(main())
