"""Apache Airflow provider for the Perkville loyalty API.

Nothing heavy is imported here: Airflow imports this package while parsing DAG files and
while listing providers, so the hook and operators load only when a DAG asks for them.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
