"""Opening the page in Streamlit's AppTest, as the page tests do."""

import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")
SHORT = {"steps": "120", "every": "20"}  # keep each run short: a few snapshots are enough to draw


def open_page(params: dict, wait_snapshots: int = 2, timeout: float = 60) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    from bnviz.ui.runtime import registry

    deadline = time.time() + timeout
    while time.time() < deadline:
        runs = [e.run for e in registry()._entries.values()]
        if runs and all(len(r.history) >= wait_snapshots or r.state in ("finished", "failed") for r in runs):
            break
        time.sleep(0.05)
    at.run()
    return at


def the_run():
    from bnviz.ui.runtime import registry

    (entry,) = registry()._entries.values()
    return entry.run
