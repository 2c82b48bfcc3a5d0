"""``python -m perkville_provider.demo``: see :mod:`perkville_provider.demo.runner`."""

from __future__ import annotations

from perkville_provider.demo.runner import main

raise SystemExit(main())
