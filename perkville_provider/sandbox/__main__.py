"""``python -m perkville_provider.sandbox serve ...``: the same as the ``perkville-sandbox`` command."""

from __future__ import annotations

import sys

from perkville_provider.sandbox.cli import main

sys.exit(main())
