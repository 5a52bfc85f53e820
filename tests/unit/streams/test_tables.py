"""The per-user tables' RocksDB stores: written without the write-ahead log, and still
all there after a clean close."""

from __future__ import annotations

import gc
from pathlib import Path

import faust

from shopstream.config import Settings
from streams.tables import create_tables


def wal_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.glob("*.log"))


def test_user_rows_skip_the_wal_and_survive_a_clean_close(tmp_path):
    app = faust.App("tables-test", store="rocksdb://", datadir=str(tmp_path))
    tables = create_tables(app, Settings(topic_partitions=2))
    user_store, catalog_store = tables.user_state.data, tables.catalog.data
    user_db = user_store._db_for_partition(1)
    catalog_db = catalog_store._db_for_partition(0)
    for n in range(200):
        user_db.put(f"user-{n}".encode(), b"s" * 500)
        catalog_db.put(f"item-{n}".encode(), b"c" * 500)
    assert wal_bytes(catalog_store.partition_path(0)) > 200 * 500  # Faust's default
    assert wal_bytes(user_store.partition_path(1)) == 0

    del user_db, catalog_db
    user_store._dbs.clear()  # what Faust does when it stops or hands the partition over
    gc.collect()
    again = create_tables(faust.App("tables-test", store="rocksdb://", datadir=str(tmp_path)),
                          Settings(topic_partitions=2))
    reopened = again.user_state.data._db_for_partition(1)
    assert all(reopened.get(f"user-{n}".encode()) == b"s" * 500 for n in range(200))
