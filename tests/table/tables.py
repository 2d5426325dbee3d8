"""What the table tests share: the recorded ioffe configuration, its share link, and hand-written CSV tables."""

from urllib.parse import urlencode

from bnviz import urlstate
from bnviz.config import PRESETS
from bnviz.table.schema import TABLE_COLUMNS

IOFFE = PRESETS["ioffe"].config.replace(steps=200)  # the real network: 3 x 100 sigmoid units, 9 snapshots
HEADER = ",".join(TABLE_COLUMNS) + "\n"
GOOD_ROW = "bn,0,0,x,-1,mean,0.5\n"


def query_of(preset, cfg):
    return urlencode(urlstate.encode(preset, cfg), safe=",")


def csv_of(*rows):
    """A CSV table: the header, then ``rows`` (each a line ending in a newline), as bytes."""
    return (HEADER + "".join(rows)).encode()
