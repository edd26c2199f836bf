"""The streaming shard writer that finalize writes data/, sharegpt/ and candidates/ through."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from rlt_data.shards import ShardWriter

SCHEMA = pa.schema([("id", pa.int64()), ("text", pa.string())])


def _table(start: int, n: int) -> pa.Table:
    return pa.Table.from_pylist([{"id": i, "text": "x" * 100} for i in range(start, start + n)], schema=SCHEMA)


def test_rotates_at_the_size_names_of_n_and_keeps_every_row_in_order(tmp_path):
    folder = tmp_path / "data"
    writer = ShardWriter(folder, SCHEMA, max_shard_bytes=2000)
    for start in range(0, 100, 30):  # chunks of 30 rows, ~110 bytes each
        writer.write(_table(start, min(30, 100 - start)))
    names = writer.close()
    assert len(names) > 3 and names == sorted(p.name for p in folder.glob("*.parquet"))
    assert all(n.endswith(f"-of-{len(names):05d}.parquet") for n in names)
    rows = [r["id"] for n in names for r in pq.read_table(folder / n).to_pylist()]
    assert rows == list(range(100))
    assert all(pq.read_metadata(folder / n).num_rows > 0 for n in names)  # no empty shard
    assert not list(folder.glob(".*"))  # no temporary file left


def test_no_rows_is_one_schema_only_file_and_old_layout_is_replaced(tmp_path):
    folder = tmp_path / "data"
    first = ShardWriter(folder, SCHEMA, 500)
    first.write(_table(0, 20))
    assert len(first.close()) > 1
    names = ShardWriter(folder, SCHEMA, 500).close()
    assert names == ["train-00000-of-00001.parquet"] and [p.name for p in folder.glob("*.parquet")] == names
    assert pq.read_table(folder / names[0]).schema.equals(SCHEMA) and pq.read_metadata(folder / names[0]).num_rows == 0


def test_abort_keeps_the_published_shards_and_stale_parts_are_cleared(tmp_path):
    folder = tmp_path / "data"
    published = ShardWriter(folder, SCHEMA, 10**6)
    published.write(_table(0, 5))
    published.close()
    broken = ShardWriter(folder, SCHEMA, 10**6)
    broken.write(_table(100, 5))
    broken.abort()  # an error or an interrupt in finalize
    assert [r["id"] for r in pq.read_table(folder / "train-00000-of-00001.parquet").to_pylist()] == list(range(5))
    assert not list(folder.glob(".*"))
    (folder / ".part-00000.parquet.tmp-999").write_bytes(b"left by a kill -9")
    ShardWriter(folder, SCHEMA, 10**6).close()
    assert not list(folder.glob(".*"))
