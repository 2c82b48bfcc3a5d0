"""The doctor's read-only probes, in the order the table shows them; each adds a finding.

Access and addressing in :mod:`~perkville_provider.doctor.access`, shapes in
:mod:`~perkville_provider.doctor.shapes`, pace in :mod:`~perkville_provider.doctor.pace`; every
read goes through :class:`~perkville_provider.doctor.prober.Prober`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from perkville_provider.doctor.access import (
    FILTER_PROBES,
    NEEDED_SCOPES,
    path_alternatives,
    probe_business,
    probe_filters,
    probe_paths,
    probe_scopes,
)
from perkville_provider.doctor.pace import probe_latency, probe_rate_headers
from perkville_provider.doctor.prober import Answer, Prober
from perkville_provider.doctor.shapes import (
    probe_errors,
    probe_list_shape,
    probe_representations,
    probe_write_only,
)

__all__ = ["FILTER_PROBES", "NEEDED_SCOPES", "Answer", "Prober", "path_alternatives", "run_probes"]


def run_probes(p: Prober, configured_business: int | None, conn_id: str, extras: Mapping[str, Any]) -> None:
    """Every probe, in the order the table shows them."""
    probe_business(p, configured_business)
    probe_scopes(p)
    probe_paths(p)
    probe_list_shape(p)
    probe_filters(p)
    probe_representations(p)
    probe_write_only(p)
    probe_errors(p)
    probe_rate_headers(p)
    probe_latency(p, conn_id, extras)
