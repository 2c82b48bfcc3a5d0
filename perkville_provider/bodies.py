"""What the hook sends for an award or a member, and the statuses it answers with.

A light module (no HTTP stack, no Airflow): operators build dry-run previews from these bodies and
their summary counters from these statuses without importing the hook.
"""

from __future__ import annotations

from typing import Any, Literal

import pendulum

from perkville_provider.records import Award, Member

__all__ = ["AwardStatus", "MemberStatus", "award_request_body", "json_value", "member_request_body"]

#: What one award did (see ``PerkvilleHook.award_points``).
AwardStatus = Literal["awarded", "duplicate", "daily_limited"]
#: What one external member upsert did.
MemberStatus = Literal["created", "updated"]


def json_value(value: Any) -> Any:
    """A value as JSON sends it: dates and times in ISO 8601, anything else as it is.

    :param value: a field value
    :return: the value to put in a JSON body
    """
    if isinstance(value, pendulum.DateTime | pendulum.Date):
        return value.isoformat()
    return value


def award_request_body(
    award: Award, business_id: int, *, limit_to_once_per_calendar_day: bool = False
) -> dict[str, Any]:
    """The POST /v2/transactions/ body for one award (also what a dry run reports).

    :param award: the validated award
    :param business_id: the business the points are awarded at
    :param limit_to_once_per_calendar_day: ask Perkville to refuse a second award of the perk that day
    :return: the JSON body
    """
    body: dict[str, Any] = {
        "business": business_id,
        "perk": award.perk_id,
        "quantity": award.quantity,
        "trans_source_id": award.trans_source_id,
    }
    if award.user_email is not None:
        body["user_email"] = award.user_email
    elif award.user_id is not None:
        body["user"] = award.user_id
    else:
        body["external_member_id"] = award.external_member_id
        body["external_system_id"] = award.external_system_id
    if award.location_id is not None:
        body["location"] = award.location_id
    if award.transaction_dt is not None:
        body["transaction_dt"] = json_value(award.transaction_dt)
    if limit_to_once_per_calendar_day:
        body["limit_to_once_per_calendar_day"] = True
    return body


def member_request_body(member: Member, business_id: int) -> dict[str, Any]:
    """The POST /v2/external-members/ body for one member (also what a dry run reports).

    :param member: the validated member
    :param business_id: the business the member belongs to
    :return: the JSON body
    """
    body: dict[str, Any] = {
        "business": business_id,
        "external_system_id": member.external_system_id,
        "external_member_id": member.external_member_id,
        "user_email": member.user_email,
    }
    optional = {
        "first_name": member.first_name,
        "last_name": member.last_name,
        "external_membership_type": member.external_membership_type,
        "external_membership_status": member.external_membership_status,
        "external_join_dt": member.external_join_dt,
        "external_cancel_dt": member.external_cancel_dt,
        "home_location": member.home_location_id,
    }
    body.update({name: json_value(value) for name, value in optional.items() if value is not None})
    return body
