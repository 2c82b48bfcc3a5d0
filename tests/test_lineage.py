"""The OpenLineage naming convention and the perkville asset URI scheme Airflow normalises through."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from airflow.sdk import Asset

from perkville_provider import lineage
from perkville_provider.demo import runner
from perkville_provider.operators.award_points import PerkvilleAwardPointsOperator


def test_an_asset_uri_spelled_otherwise_is_the_same_asset_and_the_same_dataset():
    canonical = "perkville://api.perkville.com/business/9823/transactions"

    spelled = Asset(uri="perkville://API.Perkville.com:443/business/9823/transactions/", name="x")

    assert spelled.uri == canonical
    dataset = lineage.convert_asset_to_openlineage(spelled)
    assert (dataset.namespace, dataset.name) == (
        "perkville://api.perkville.com",
        "business/9823/transactions",
    )
    assert lineage.asset_uri("https://api.perkville.com", 9823, "transactions") == canonical


def test_a_business_path_without_a_numeric_id_is_refused_naming_the_form():
    with pytest.raises(ValueError, match=r"/business/<numeric id>/<resource>"):
        Asset(uri="perkville://api.perkville.com/business/gym/transactions", name="x")


def test_other_perkville_assets_keep_their_uri_and_have_no_dataset():
    asset = Asset(uri="perkville://9823/connections-export", name="x")

    assert asset.uri == "perkville://9823/connections-export"
    assert lineage.convert_asset_to_openlineage(asset) is None


@pytest.mark.parametrize(
    ("base_url", "namespace"),
    [
        ("https://api.perkville.com", "perkville://api.perkville.com"),
        ("https://API.perkville.com:443/", "perkville://api.perkville.com"),
        ("http://127.0.0.1:8765", "perkville://127.0.0.1:8765"),
        ("api.perkville.com", "perkville://api.perkville.com"),
    ],
)
def test_the_namespace_is_the_api_host_with_a_port_only_when_not_the_default(base_url, namespace):
    assert lineage.namespace(base_url) == namespace


def test_staged_files_are_named_as_openlineage_names_object_storage():
    local = lineage.object_storage_dataset("file:///shared/staging/awards/00000.jsonl")
    remote = lineage.object_storage_dataset("s3://gym-staging/runs/awards/00000.jsonl")

    assert (local.namespace, local.name) == ("file", "/shared/staging/awards/00000.jsonl")
    assert (remote.namespace, remote.name) == ("s3://gym-staging", "runs/awards/00000.jsonl")


def test_a_sqlite_table_is_named_by_its_file_and_sqlites_main_schema(tmp_path: Path, monkeypatch):
    from perkville_provider.transfers.perkville_to_sql import sql_hook

    path = tmp_path / "gym.db"
    sqlite3.connect(path).close()
    monkeypatch.setenv("AIRFLOW_CONN_LINEAGE_GYM", runner.source_conn_env_value(path))

    table = lineage.sql_table(sql_hook("lineage_gym"), "perkville_connections")

    assert (table.namespace, table.name) == (f"sqlite://{path}", "main.perkville_connections")


def test_an_operator_reports_the_staged_files_it_reads_and_the_resource_it_writes_before_it_runs(sandbox):
    operator = PerkvilleAwardPointsOperator(
        task_id="award", awards=["/staging/run/awards/00000.jsonl", "/staging/run/awards/00001.jsonl"]
    )

    start = operator.get_openlineage_facets_on_start()

    assert {(d.namespace, d.name) for d in start.inputs} == {
        ("file", "/staging/run/awards/00000.jsonl"),
        ("file", "/staging/run/awards/00001.jsonl"),
    }
    host = sandbox.base_url.split("://", 1)[1].rstrip("/")
    assert [(d.namespace, d.name) for d in start.outputs] == [
        (f"perkville://{host}", "business/9823/transactions")
    ]
    assert start.run_facets == {}
