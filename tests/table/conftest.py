"""Fixtures of the table tests: the ioffe run of tests/table/tables.py, trained once per session, and the files
recorded from it."""

import pytest

from bnviz.table import record

from ..helpers import finished_run
from .tables import IOFFE, query_of


@pytest.fixture(scope="session")
def ioffe():
    return finished_run(IOFFE)


@pytest.fixture(scope="session")
def files(ioffe, tmp_path_factory):
    """The ioffe run written as the record command and the download button write it."""
    d = tmp_path_factory.mktemp("replay")
    out = {}
    for kind in ("csv", "parquet"):
        path = d / f"run.{kind}"
        record.write_table(record.to_arrow(ioffe.history.snapshots(), quantiles=True), path,
                           query=query_of("ioffe", IOFFE))
        out[kind, True] = path.read_bytes()
        plain = (record.to_arrow(ioffe.history.snapshots()) if kind == "parquet"
                 else record.to_table(ioffe.history.snapshots()))
        out[kind, False] = record.table_to_bytes(plain, kind, query=query_of("ioffe", IOFFE))
    return out
