"""``python -m kernel_remote_relay``: the same as the ``kernel-relay`` command."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
