"""Feature cache: one Arrow IPC file per key, written atomically.

A file holds the metadata columns plus ``x`` as a fixed-size list of float32
per row; the per-row shape and axis names are in the schema metadata. Files
are written to a temporary name in the same folder and renamed into place,
so an interrupted build leaves nothing a later run would read. A file that
cannot be read back (damaged by hand, say) counts as a miss and is rebuilt.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


def cache_key(parts: dict[str, Any]) -> str:
    """A stable hash of a JSON-able description."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


class FeatureCache:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.arrow"

    def get(self, key: str) -> tuple[np.ndarray, Any] | None:
        """Return (x, meta table) or None on a miss."""
        import pyarrow as pa

        path = self.path(key)
        if not path.is_file():
            return None
        try:
            with pa.memory_map(str(path), "r") as source:
                table = pa.ipc.open_file(source).read_all()
            md = table.schema.metadata or {}
            shape = tuple(json.loads(md[b"moodops.shape"]))
            column = table.column("x").combine_chunks()
            x = column.values.to_numpy(zero_copy_only=False).reshape((table.num_rows, *shape))
            return x, table.drop_columns(["x"]).replace_schema_metadata(None)
        except Exception as e:  # noqa: BLE001 - any unreadable entry is a miss
            logger.warning("feature cache entry %s is unreadable (%s); rebuilding it", path, e)
            return None

    def put(self, key: str, x: np.ndarray, meta: Any, info: dict[str, Any] | None = None) -> Path:
        import pyarrow as pa

        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        x = np.ascontiguousarray(x, dtype=np.float32)
        row = int(np.prod(x.shape[1:]))
        values = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), row)
        table = meta.append_column("x", values)
        md = {"moodops.shape": json.dumps(list(x.shape[1:])), "moodops.info": json.dumps(info or {}, default=str)}
        table = table.replace_schema_metadata(md)
        fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f, pa.ipc.new_file(f, table.schema) as writer:
                writer.write_table(table)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path
