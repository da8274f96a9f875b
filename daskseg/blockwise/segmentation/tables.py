"""Per-block columnar tables (Parquet) of a segmentation's region graph and merge maps.

Why Parquet files, one per block, and not a database: every block's task writes its own file (no
server to start, no lock shared by the workers, nothing to tune), a retried block rewrites the same
file atomically, and a reader takes exactly the blocks it needs. The files are standard: DuckDB,
pandas, polars or Spark read a whole directory as one table, e.g. to export the graph to SQLite or
PostgreSQL for volara/funlib.persistence (see the README's "The region graph" section).
"""

from __future__ import annotations

import os
import uuid

import numpy as np


def write_table(path: str, columns: dict[str, np.ndarray]) -> None:
    """Write ``columns`` (equal-length 1-D arrays) to the Parquet file ``path``, atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    os.makedirs(os.path.dirname(path), exist_ok=True)
    table = pa.table({name: np.ascontiguousarray(values) for name, values in columns.items()})
    tmp = f"{path}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        pq.write_table(table, tmp, compression="zstd")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def read_table(path: str, columns: list[str] | None = None) -> dict[str, np.ndarray]:
    """The columns of the Parquet file ``path`` as numpy arrays."""
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=columns)
    return {name: table.column(name).to_numpy() for name in table.column_names}
