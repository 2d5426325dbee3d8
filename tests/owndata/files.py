"""CSV files for the own-data tests, written the way a spreadsheet writes them."""

import numpy as np


def csv_bytes(header, rows, sep=",", newline="\n") -> bytes:
    lines = [sep.join(header)] + [sep.join(str(v) for v in row) for row in rows]
    return (newline.join(lines) + newline).encode()


def blobs(n=200, seed=0, classes=("a", "b", "c"), features=4) -> bytes:
    """``n`` rows of ``features`` Gaussian features and a text label whose class shifts the mean."""
    rng = np.random.default_rng(seed)
    k = rng.integers(0, len(classes), n)
    x = rng.standard_normal((n, features)) + 2.0 * k[:, None]
    rows = [[f"{v:.6f}" for v in xi] + [classes[ki]] for xi, ki in zip(x, k)]
    return csv_bytes([f"f{j}" for j in range(features)] + ["label"], rows)


def linear(n=300, seed=1) -> bytes:
    """A regression: price = 10 (u + 2v - w) + 3 + noise, target last, no column named label or target."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3))
    y = 10 * (x @ np.array([1.0, 2.0, -1.0])) + 3 + rng.standard_normal(n)
    return csv_bytes(["u", "v", "w", "price"], [[f"{v:.6f}" for v in xi] + [f"{t:.6f}"] for xi, t in zip(x, y)])
