"""Feature cache: one Arrow IPC file per key, written atomically.

A file holds the metadata columns plus ``x`` (and any extra inputs, as
``extra.<name>`` columns) as fixed-size lists of float32 per row; the per-row
shapes are in the schema metadata. Files
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

    def get(self, key: str) -> tuple[np.ndarray, Any, dict[str, np.ndarray]] | None:
        """Return (x, meta table, extra inputs) or None on a miss."""
        import pyarrow as pa

        path = self.path(key)
        if not path.is_file():
            return None
        try:
            with pa.memory_map(str(path), "r") as source:
                table = pa.ipc.open_file(source).read_all()
            md = table.schema.metadata or {}
            shapes = {"x": json.loads(md[b"moodops.shape"])}
            shapes.update({f"extra.{k}": v for k, v in json.loads(md.get(b"moodops.extra_shapes", b"{}")).items()})
            arrays = {}
            for name, shape in shapes.items():
                column = table.column(name).combine_chunks()
                arrays[name] = column.values.to_numpy(zero_copy_only=False).reshape((table.num_rows, *shape))
            x = arrays.pop("x")
            extra = {k[len("extra."):]: v for k, v in arrays.items()}
            return x, table.drop_columns(list(shapes)).replace_schema_metadata(None), extra
        except Exception as e:  # noqa: BLE001 - any unreadable entry is a miss
            logger.warning("feature cache entry %s is unreadable (%s); rebuilding it", path, e)
            return None

    def put(self, key: str, x: np.ndarray, meta: Any, info: dict[str, Any] | None = None,
            extra: dict[str, np.ndarray] | None = None) -> Path:
        import pyarrow as pa

        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        table = meta
        for name, values in {"x": x, **{f"extra.{k}": v for k, v in (extra or {}).items()}}.items():
            values = np.ascontiguousarray(values, dtype=np.float32)
            row = int(np.prod(values.shape[1:]))
            table = table.append_column(name, pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), row))
        md = {"moodops.shape": json.dumps(list(x.shape[1:])), "moodops.info": json.dumps(info or {}, default=str),
              "moodops.extra_shapes": json.dumps({k: list(v.shape[1:]) for k, v in (extra or {}).items()})}
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
