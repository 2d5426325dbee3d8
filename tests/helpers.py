"""Small helpers shared by the tests."""

import time


def wait_for(pred, timeout: float = 20.0, every: float = 0.02) -> bool:
    """Poll ``pred`` until it is true (True) or ``timeout`` seconds pass (False)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(every)
    return False
