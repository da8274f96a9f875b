"""The region graph out of its per-block Parquet files: one SQLite database, for tools that read
graphs from a database (volara and funlib.persistence's SQLite graph provider)."""

from __future__ import annotations

import glob
import logging
import os
import sqlite3

import numpy as np

from ...errors import SegmentError
from ...segment.contacts import combine_statistics
from .tables import read_table

logger = logging.getLogger(__name__)


def export_sqlite(graph_dir: str | os.PathLike, database: str | os.PathLike) -> dict[str, int]:
    """Write the graph of ``segment``'s ``graph_dir`` to the SQLite file ``database``.

    Tables ``nodes(id, size)`` and ``edges(u, v, sum, count, max, mean)``, one row per fragment
    pair (the parts of a contact that several blocks saw are summed). The files are read one at a
    time, but the pairs crossing block faces are combined in memory: meant for volumes whose graph
    fits in memory (what database-backed tools need anyway).

    Returns:
        The number of nodes and edges written.
    """
    graph_dir = os.fspath(graph_dir)
    edge_files = sorted(glob.glob(os.path.join(graph_dir, "edges", "*.parquet")))
    node_files = sorted(glob.glob(os.path.join(graph_dir, "nodes", "*.parquet")))
    if not edge_files or not node_files:
        raise SegmentError(f"{graph_dir} holds no region graph (edges/*.parquet, nodes/*.parquet): run segment first")
    with sqlite3.connect(os.fspath(database)) as db:
        db.execute("DROP TABLE IF EXISTS nodes")
        db.execute("DROP TABLE IF EXISTS edges")
        db.execute("CREATE TABLE nodes (id INTEGER PRIMARY KEY, size INTEGER)")
        db.execute("CREATE TABLE edges (u INTEGER, v INTEGER, sum REAL, count INTEGER, max REAL, mean REAL, "
                   "PRIMARY KEY (u, v))")
        nodes = 0
        for path in node_files:
            table = read_table(path)
            db.executemany("INSERT INTO nodes VALUES (?, ?)", zip(_signed(table["id"]), table["size"].tolist()))
            nodes += len(table["id"])
        parts = [read_table(path) for path in edge_files]
        pairs = np.concatenate([np.stack([p["u"], p["v"]], axis=1) for p in parts])
        pairs, sums, counts, maxima = combine_statistics(
            pairs, *(np.concatenate([p[c] for p in parts]) for c in ("sum", "count", "max"))
        )
        db.executemany(
            "INSERT INTO edges VALUES (?, ?, ?, ?, ?, ?)",
            zip(_signed(pairs[:, 0]), _signed(pairs[:, 1]), sums.tolist(), counts.tolist(), maxima.tolist(),
                (sums / np.maximum(counts, 1)).tolist()),
        )
    logger.info("exported %d nodes and %d edges of %s to %s", nodes, len(pairs), graph_dir, database)
    return {"nodes": nodes, "edges": len(pairs)}


def _signed(ids: np.ndarray) -> list[int]:
    """Fragment ids as SQLite integers (signed 64 bit)."""
    ids = np.asarray(ids, np.uint64)
    if len(ids) and int(ids.max()) >= 2**63:
        raise SegmentError(f"fragment id {int(ids.max())} does not fit SQLite's signed 64-bit integers")
    return ids.astype(np.int64).tolist()
