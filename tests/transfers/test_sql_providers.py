"""What PerkvilleToSqlOperator says when the SQL side of an install is missing: what to add."""

from __future__ import annotations

import json
import sys

import pytest
from airflow.sdk.exceptions import AirflowFailException

from perkville_provider.transfers.perkville_to_sql import sql_hook


def test_a_target_whose_database_provider_is_missing_names_the_setting_and_the_provider(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", json.dumps({"conn_type": "vertica", "host": "db"}))

    with pytest.raises(AirflowFailException) as raised:
        sql_hook("warehouse")

    message = str(raised.value)
    assert message.startswith("sql_conn_id: connection 'warehouse' is of type 'vertica'")
    assert "apache-airflow-providers-vertica" in message
    assert "[sql] extra" in message


def test_an_install_without_common_sql_names_the_sql_extra(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": "/tmp/w.db"}))
    monkeypatch.setitem(sys.modules, "airflow.providers.common.sql.hooks.sql", None)

    with pytest.raises(AirflowFailException, match=r"needs the \[sql\] extra") as raised:
        sql_hook("warehouse")

    assert "pip install 'airflow-provider-perkville[sql]'" in str(raised.value)
