"""``python -m kernel`` is the ``kernel`` command."""

import sys

from .cli import main

sys.exit(main())
