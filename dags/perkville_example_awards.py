"""The check-in awards DAG's steps that are not wiring: the extract (window, rows, members not yet
in Perkville, staging) and the report (own day and late days, threshold, gap, watermark).

This file holds no DAG (it is listed in ``.airflowignore``).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from typing import Any

import pendulum
from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowFailException
from perkville_example_common import (
    BUSINESS_ID,
    MEMBERS_ASSET,
    MEMBERS_PER_FILE,
    PERKVILLE_API_HOST,
    as_utc_iso,
    fetch_rows,
    source_sql,
    source_time,
    to_member,
)
from perkville_example_windows import (
    AWARDED_THROUGH,
    EPOCH,
    MEMBER_SYNC_OVERLAP,
    SYNCED_UNTIL,
    award_day,
    award_window,
    backfill_command,
    later_watermark,
    state_watermark,
)

from perkville_provider import run_tally, staging
from perkville_provider.batch import merge_summaries
from perkville_provider.lineage import asset_uri
from perkville_provider.operators.award_points import AWARD_STATUSES
from perkville_provider.operators.base import raise_for_failure_ratio
from perkville_provider.records import RecordValidationError, build_trans_source_id

AWARDS_ASSET = Asset(
    uri=asset_uri(PERKVILLE_API_HOST, BUSINESS_ID, "transactions"), name="perkville_checkin_awards"
)
"""Updated by each successful awards run; its asset state holds ``awarded_through``."""
SETTLED_STATUSES = ("awarded", "duplicate", "daily_limited")
"""What Perkville answers for good: re-sending such a row can only come back a duplicate."""
AWARD_TASK = "award_checkin_points"
AWARD_REPORTS = "awards"
"""The award chunks' report files: ``reports/awards-<chunk>-try<try>.jsonl`` in the run's staging."""
DAY_COLUMNS = ("total", "awarded", "points", "duplicate", "daily_limited", "invalid", "failed")

log = logging.getLogger(__name__)


def to_award(row: dict[str, Any], *, source_system: str, club_locations: dict[str, int]) -> dict[str, Any]:
    """A check-in row as an award record keyed by ``SOURCE:CLUB:CHECKIN:<id>``.

    A row whose key cannot be built keeps an empty ``trans_source_id``, so the operator reports
    it as invalid instead of this task failing the whole day.
    """
    try:
        trans_source_id = build_trans_source_id(source_system, row["club_code"], "CHECKIN", row["checkin_id"])
    except RecordValidationError:
        trans_source_id = None
    return {
        "trans_source_id": trans_source_id,
        "user_email": row.get("user_email"),
        "location_id": club_locations.get(row.get("club_code") or ""),
        "transaction_dt": as_utc_iso(row.get("checked_in_at")),
    }


def chunk_size_for(count: int, wanted: int, groups: int = 1) -> int:
    """``wanted``, or larger when needed to stay within Airflow's limit on mapped task instances
    (each of the ``groups`` days may end with one partial chunk)."""
    from airflow.sdk.configuration import conf

    max_chunks = max(1, conf.getint("core", "max_map_length", fallback=1024) - groups + 1)
    return max(wanted, -(-count // max_chunks))


def business_timezone(name: str) -> str:
    try:
        pendulum.timezone(name)
    except Exception:
        raise AirflowFailException(f"business_timezone: unknown timezone {name!r} (an IANA name)") from None
    return name


def _midnight(day: pendulum.Date, timezone: str) -> pendulum.DateTime:
    return pendulum.datetime(day.year, day.month, day.day, tz=timezone)


def _local_day(award: Mapping[str, Any], timezone: str, fallback: str) -> str:
    moment = award.get("transaction_dt")
    return pendulum.parse(moment).in_timezone(timezone).to_date_string() if moment else fallback


def extract_awards(context: Mapping[str, Any], queries: Mapping[str, str]) -> dict[str, Any]:
    """Stage the window's awards (by day, in chunks) and the members to upsert first.

    :return: ``award_chunks`` (chunk names relative to the run's staging directory, one per mapped
        task: see ``staging.chunk_in_current_run``), ``members`` (paths) and ``plan`` (what
        the report needs: the day, the window, per-day counts, each chunk's day)
    """
    params, dag_run = context["params"], context["dag_run"]
    timezone = business_timezone(params["business_timezone"])
    day, day_source = award_day(
        params["day"], context.get("data_interval_start"), dag_run.run_after, timezone
    )
    awarded_through = state_watermark(context, AWARDS_ASSET, AWARDED_THROUGH, timezone)
    window = award_window(
        day,
        lookback_days=int(params["lookback_days"]),
        max_catchup_days=int(params["max_catchup_days"]),
        awarded_through=awarded_through,
    )
    days = [d.to_date_string() for d in window.days]
    bounds = {
        "window_start": source_time(_midnight(window.first_day, timezone)),
        "window_end": source_time(_midnight(day, timezone).add(days=1)),
    }
    log.info("Awarding %s (from %s); reading the days %s to %s", day, day_source, days[0], days[-1])
    known: set[str] = set()
    if params["skip_known_awards"]:
        ti = context["ti"]
        known = staging.settled_keys(
            params["staging_root"],
            dag_run.dag_id,
            days=days,
            statuses=SETTLED_STATUSES,
            known_run=lambda run_id: ti.get_dr_count(dag_id=dag_run.dag_id, run_ids=[run_id]) > 0,
        )
    by_day: dict[str, list[dict[str, Any]]] = {d: [] for d in days}
    skipped: Counter[str] = Counter()
    checkins_sql = source_sql(params, "checkins_sql", queries["checkins_sql"])
    for row in fetch_rows(params["source_conn_id"], checkins_sql, bounds):
        award = to_award(
            row, source_system=params["external_system_id"], club_locations=params["club_locations"]
        )
        row_day = _local_day(award, timezone, days[-1])
        if award["trans_source_id"] in known:
            skipped[row_day] += 1
        else:
            by_day.setdefault(row_day, []).append(award)
    run_dir = staging.run_staging_dir(params["staging_root"], dag_run.dag_id, dag_run.run_id)
    size = chunk_size_for(sum(map(len, by_day.values())), int(params["chunk_size"]), len(by_day))
    award_chunks, chunk_days = [], []
    for row_day, awards in by_day.items():
        for name, _count in staging.stage_in_chunks(run_dir, f"awards/{row_day}", awards, size):
            award_chunks.append(name)
            chunk_days.append(row_day)
    members_sql = source_sql(params, "members_sql", queries["members_sql"])
    synced_until = state_watermark(context, MEMBERS_ASSET, SYNCED_UNTIL)
    members = members_to_upsert(params, synced_until, bounds, members_sql)
    member_files = [
        str(run_dir / name)
        for name, _ in staging.stage_in_chunks(run_dir, "members", members, MEMBERS_PER_FILE)
    ]
    staging.write_manifest(run_dir, dag_id=dag_run.dag_id, run_id=dag_run.run_id, day=str(day), days=days)
    plan = {
        "day": str(day),
        "day_source": day_source,
        "days": days,
        "judged_from": str(window.judged_from),
        "awarded_through": awarded_through,
        "uncovered": [str(d) for d in window.uncovered] if window.uncovered else None,
        "rows_by_day": {d: len(by_day.get(d, [])) + skipped[d] for d in days},
        "skipped_known_by_day": {d: skipped[d] for d in days},
        "chunk_days": chunk_days,
        "members_to_upsert": len(members),
    }
    log.info("Staged %d chunks and %d members under %s: %s", len(award_chunks), len(members), run_dir, plan)
    return {"award_chunks": award_chunks, "members": member_files, "plan": plan}


def members_to_upsert(
    params: Mapping[str, Any], synced_until: str | None, bounds: Mapping[str, str], members_sql: str
) -> list[dict[str, Any]]:
    """The members with a check-in in the window that no successful member sync has sent yet:
    changed since the sync's watermark (less its overlap), or every one before the first sync."""
    since = EPOCH if not synced_until else pendulum.parse(synced_until) - MEMBER_SYNC_OVERLAP
    rows = fetch_rows(params["source_conn_id"], members_sql, {**bounds, "changed_since": source_time(since)})
    return [to_member(row, params["club_locations"]) for row in rows]


def _counts(summary: Mapping[str, Any]) -> dict[str, int]:
    return {name: int(summary.get(name, 0)) for name in DAY_COLUMNS}


def chunk_failure_ratio(plan: Mapping[str, Any], map_index: int, max_failure_ratio: float) -> float:
    """The ``max_failure_ratio`` one award chunk is judged by, so that it fails on its own bad rows.

    The run's threshold, with the rows of its day that earlier runs settled (skipped, never staged)
    counted as successes, spread over the day's chunks; a day no longer judged (an earlier
    successful run covered it) allows any share: its bad rows were judged by that run. A re-run of
    a day thus re-reads its few bad rows without failing on them, while a chunk whose rows all
    fail (a wrong perk) fails.
    """
    day = plan["chunk_days"][int(map_index)]
    if day < plan["judged_from"]:
        return 1.0
    staged = int(plan["rows_by_day"][day]) - int(plan["skipped_known_by_day"].get(day, 0))
    if staged <= 0:
        return float(max_failure_ratio)
    return min(1.0, float(max_failure_ratio) * int(plan["rows_by_day"][day]) / staged)


def asset_extra(result: Mapping[str, Any]) -> dict[str, Any]:
    """What a downstream DAG reads of this run on the Asset event: small, counts only."""
    return {
        "day": result["day"],
        "window": result["window"],
        "run": result["run"],
        "tries": result["tries"],
        "own_day": result["own_day"],
        "late": result["late"],
        "skipped_known": result["skipped_known"],
    }


def day_table(plan: Mapping[str, Any], per_day: Mapping[str, Mapping[str, Any]]) -> str:
    """One line per day of the window: what was sent, and what was skipped as already settled."""
    header = f"{'day':<12}{'':<6}" + "".join(f"{c:>14}" for c in (*DAY_COLUMNS, "skipped_known"))
    lines = [header]
    for day in plan["days"]:
        tag = "own" if day == plan["day"] else "late"
        counts = _counts(per_day[day])
        values = [*counts.values(), plan["skipped_known_by_day"].get(day, 0)]
        lines.append(f"{day:<12}{tag:<6}" + "".join(f"{v:>14}" for v in values))
    return "\n".join(lines)


def report_awards(
    members_summary: Mapping[str, Any] | None,
    plan: Mapping[str, Any],
    context: Mapping[str, Any],
) -> dict[str, Any]:
    """Log the run's tables, judge it, and advance ``awarded_through`` when it succeeded.

    Counts come from the chunks' per-record reports (``perkville_provider.run_tally``), not from
    XCom: a failed chunk pushes none, and a retry replaces the one before. The result, and the
    Asset event's ``extra``, carry the run's counts across tries (``run``: what this run added to
    the ledger) and each try's (``tries``).

    The threshold is judged on the days no earlier successful run covered (the run's own day, and
    the days of a widened window): earlier days' bad rows were judged by their own runs.
    """
    params, dag_run = context["params"], context["dag_run"]
    run_dir = staging.run_staging_dir(params["staging_root"], dag_run.dag_id, dag_run.run_id)
    chunks = run_tally.chunk_summaries(
        run_dir, AWARD_REPORTS, len(plan["chunk_days"]), operation="award_points", statuses=AWARD_STATUSES
    )
    per_day = {
        day: merge_summaries(s for s, d in zip(chunks, plan["chunk_days"], strict=False) if d == day)
        for day in plan["days"]
    }
    earlier = [day for day in plan["days"] if day != plan["day"]]
    result = merge_summaries(chunks)
    result.update(
        day=plan["day"],
        day_source=plan["day_source"],
        window=[plan["days"][0], plan["days"][-1]],
        own_day=_counts(per_day[plan["day"]]),
        late=sum(int(per_day[d].get("awarded", 0)) for d in earlier),
        reread=sum(int(plan["rows_by_day"][d]) for d in earlier),
        reread_duplicate=sum(int(per_day[d].get("duplicate", 0)) for d in earlier),
        skipped_known=sum(plan["skipped_known_by_day"].values()),
        members_upserted={
            k: int((members_summary or {}).get(k, 0)) for k in ("created", "updated", "invalid", "failed")
        },
        run=run_tally.run_counts(run_dir, AWARD_REPORTS, added="awarded"),
        tries=run_tally.try_counts(run_dir, AWARD_REPORTS),
    )
    if not params["dry_run"]:
        context["outlet_events"][AWARDS_ASSET].extra = asset_extra(result)
    log.info(
        "Awarded day %s (from %s); window %s to %s; %d late check-ins awarded for earlier days; "
        "%d rows of earlier days re-read (%d duplicates, %d skipped as already settled); "
        "members upserted first: %s\n%s\nthis run across its tries (what it added to the ledger): %s; "
        "each try: %s",
        plan["day"],
        plan["day_source"],
        *result["window"],
        result["late"],
        result["reread"],
        result["reread_duplicate"],
        result["skipped_known"],
        result["members_upserted"],
        day_table(plan, per_day),
        result["run"],
        result["tries"],
    )
    # Chunks are not leaves: without this a run whose chunks failed would end "success".
    failed_chunks = context["ti"].get_ti_count(
        dag_id=dag_run.dag_id, run_ids=[dag_run.run_id], task_ids=[AWARD_TASK], states=["failed"]
    )
    if failed_chunks:
        raise AirflowFailException(
            f"{failed_chunks} chunks of {AWARD_TASK} failed (their logs say why, grouped by code); the "
            "counts above include what they sent. Clear them, once fixed, to send the rest."
        )
    missing = [chunk for chunk, summary in enumerate(chunks) if summary is None]
    if missing:
        raise AirflowFailException(
            f"chunks {missing} of {AWARD_TASK} wrote no report: they did not run (see their "
            "state); their check-ins were not sent. Clear them, or the run, to send them."
        )
    judged_days = [d for d in plan["days"] if d >= plan["judged_from"]]
    judged = merge_summaries(per_day[d] for d in judged_days)
    # Rows skipped as settled went through in an earlier run: they count, as successes.
    judged["total"] += sum(int(plan["skipped_known_by_day"].get(d, 0)) for d in judged_days)
    raise_for_failure_ratio(judged, float(params["max_failure_ratio"]))
    if plan["uncovered"]:
        first, last = (pendulum.Date.fromisoformat(d) for d in plan["uncovered"])
        command = backfill_command(context["dag"].dag_id, first, last, params["business_timezone"])
        raise AirflowFailException(
            f"check-ins of {first} to {last} were NOT awarded: the last successful run covered up to "
            f"{plan['awarded_through']}, more than max_catchup_days={params['max_catchup_days']} before "
            f"{plan['day']}. This run awarded {plan['days'][0]} to {plan['day']}. Award the rest with:\n"
            f"  {command}"
        )
    if not params["dry_run"]:
        state = context["asset_state_store"]
        current = state_watermark(context, AWARDS_ASSET, AWARDED_THROUGH, params["business_timezone"])
        state[AWARDS_ASSET].set(
            AWARDED_THROUGH, later_watermark(current, pendulum.Date.fromisoformat(plan["day"]))
        )
    return result
