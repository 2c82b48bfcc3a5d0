"""The host name Airflow records for a task of the local cluster: the Celery worker's own name.

Both local workers run on one machine, so ``socket.getfqdn()`` (Airflow's default
``[core] hostname_callable``) would give them the same name and a task instance's ``hostname``
could not tell which worker ran it. Each worker is started with ``PERKVILLE_CLUSTER_WORKER`` set
and ``[core] hostname_callable = cluster_hostname.worker_hostname``.
"""

from __future__ import annotations

import os
import socket


def worker_hostname() -> str:
    """The worker name this process was started under, else the machine's name."""
    return os.environ.get("PERKVILLE_CLUSTER_WORKER") or socket.getfqdn()
