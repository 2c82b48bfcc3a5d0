"""Extra links for the Airflow UI: from a Perkville task to its business in Perkville.

Airflow 3's API server never runs operator code: it reads an extra link from the XCom stored
under the link's ``xcom_key``. So the operator saves the URL at execute time (:meth:`persist`)
and :meth:`get_link` only reads it back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink
from airflow.sdk.execution_time.xcom import XCom

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator, Context
    from airflow.sdk.types import TaskInstanceKey

__all__ = [
    "PERKVILLE_BUSINESS_URL",
    "PerkvilleBusinessLink",
    "business_url",
]

PERKVILLE_BUSINESS_URL = "https://www.perkville.com/biz/{business_id}/"


def business_url(business: dict[str, Any] | None, business_id: Any) -> str | None:
    """The business's own ``perkville_url`` when the API gives one, else the standard biz page."""
    if business and business.get("perkville_url"):
        return str(business["perkville_url"])
    if business_id in (None, ""):
        return None
    return PERKVILLE_BUSINESS_URL.format(business_id=business_id)


class PerkvilleBusinessLink(BaseOperatorLink):
    """The "Perkville business" link: the business the task worked on, in Perkville."""

    name = "Perkville business"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """The business URL the task saved, or "" before it ran."""
        return XCom.get_value(key=self.xcom_key, ti_key=ti_key) or ""

    @classmethod
    def persist(cls, context: Context, url: str | None) -> None:
        """Store the URL for the UI (nothing is stored when the business is unknown)."""
        if url:
            context["ti"].xcom_push(key=cls().xcom_key, value=url)
