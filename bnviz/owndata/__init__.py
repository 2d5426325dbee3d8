"""Your own data: a CSV file read as numbers only (csvfile), kept on the server under its content hash (store).

Everything a visitor uploads as data passes :func:`csvfile.read` first; anything it refuses raises
:class:`csvfile.CsvError` with one line that names the column or row. Depends on config alone, so the link
codec can say whether this server has a link's data.
"""

from bnviz.owndata.csvfile import CsvError, DataInfo, Frame, prepare, read
from bnviz.owndata.store import Known, MissingData, Store, config_changes, default_store, metadata

__all__ = ["CsvError", "DataInfo", "Frame", "Known", "MissingData", "Store", "config_changes", "default_store",
           "metadata", "prepare", "read"]
