"""An XCom backend that counts the bytes the tasks pull (set as ``[core] xcom_backend`` by the bench).

Only values that are lists are counted: the extract's output, which every mapped task pulls whole
(Airflow's expand resolution); the summaries the mapped tasks push are dicts.
"""

from __future__ import annotations

import json
import os
from typing import Any

from airflow.sdk.bases.xcom import BaseXCom

COUNTER_FILE_ENV = "BENCH_XCOM_READ_COUNTER"


class CountingXCom(BaseXCom):
    @staticmethod
    def deserialize_value(result: Any) -> Any:
        value = BaseXCom.deserialize_value(result)
        path = os.environ.get(COUNTER_FILE_ENV)
        if path and isinstance(value, list):
            with open(path, "a") as counter:
                counter.write(f"{len(json.dumps(result.value))}\n")
        return value
