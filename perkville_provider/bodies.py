"""What the hook sends for an award or a member, and the statuses it answers with.

A light module (no HTTP stack, no Airflow): operators build dry-run previews from these bodies and
their summary counters from these statuses without importing the hook.
"""

from __future__ import annotations

from typing import Any, Literal

from perkville_provider.api_conventions import ApiConventions
from perkville_provider.records import Award, Member

__all__ = ["AwardStatus", "MemberStatus", "award_request_body", "member_request_body"]

#: What one award did (see ``PerkvilleHook.award_points``).
AwardStatus = Literal["awarded", "duplicate", "daily_limited"]
#: What one external member upsert did.
MemberStatus = Literal["created", "updated"]


DEFAULT_CONVENTIONS = ApiConventions()


def award_request_body(
    award: Award,
    business_id: int,
    *,
    limit_to_once_per_calendar_day: bool = False,
    api: ApiConventions = DEFAULT_CONVENTIONS,
) -> dict[str, Any]:
    """The POST /v2/transactions/ body for one award (also what a dry run reports).

    :param award: the validated award
    :param business_id: the business the points are awarded at
    :param limit_to_once_per_calendar_day: ask Perkville to refuse a second award of the perk that day
    :param api: how the connection spells relations, quantities and times (stock tastypie's by default)
    :return: the JSON body
    """
    body: dict[str, Any] = {
        "business": api.relation("businesses", business_id),
        "perk": api.relation("perks", award.perk_id),
        "quantity": api.quantity(award.quantity),
        "trans_source_id": award.trans_source_id,
    }
    if award.user_email is not None:
        body["user_email"] = award.user_email
    elif award.user_id is not None:
        body["user"] = api.relation("users", award.user_id)
    else:
        body["external_member_id"] = award.external_member_id
        body["external_system_id"] = award.external_system_id
    if award.location_id is not None:
        body["location"] = api.relation("locations", award.location_id)
    if award.transaction_dt is not None:
        body["transaction_dt"] = api.temporal(award.transaction_dt)
    if limit_to_once_per_calendar_day:
        body["limit_to_once_per_calendar_day"] = True
    return body


def member_request_body(
    member: Member, business_id: int, *, api: ApiConventions = DEFAULT_CONVENTIONS
) -> dict[str, Any]:
    """The POST /v2/external-members/ body for one member (also what a dry run reports).

    :param member: the validated member
    :param business_id: the business the member belongs to
    :param api: how the connection spells relations and times (stock tastypie's by default)
    :return: the JSON body
    """
    body: dict[str, Any] = {
        "business": api.relation("businesses", business_id),
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
        "external_home_location_id": member.external_home_location_id,
    }
    body.update({name: api.temporal(value) for name, value in optional.items() if value is not None})
    if member.home_location_id is not None:
        body["home_location"] = api.relation("locations", member.home_location_id)
    return body
