"""The browser tests do what a user does: no request of the page is intercepted, answered or rewritten.

Airflow 3.3.2's Test button once passed only because ``tests/ui`` rewrote the request it sends;
a test that patches the page tests the patch. Observing requests (``expect_request``) is fine.
"""

from __future__ import annotations

import re
from pathlib import Path

UI_TESTS = Path(__file__).parent / "ui"
INTERCEPTION = re.compile(
    r"\.route\(|\.route_from_har\(|\.unroute|\broute\.(?:fulfill|continue_|abort|fallback)\b"
    r"|\bRoute\b|set_extra_http_headers|add_init_script|route_web_socket"
)


def test_no_browser_test_intercepts_or_rewrites_a_request():
    files = sorted(UI_TESTS.glob("**/*.py"))
    assert len(files) >= 4  # the tree is where this test thinks it is
    found = [
        f"{path.relative_to(UI_TESTS.parent)}:{number}: {line.strip()}"
        for path in files
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if INTERCEPTION.search(line)
    ]
    assert found == []
