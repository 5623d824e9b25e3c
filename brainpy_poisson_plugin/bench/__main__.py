"""``python -m brainpy_poisson_plugin.bench``."""

import sys

from .runner import main

sys.exit(main())
