"""PostgreSQL plumbing: a small connection pool per URL, the schema, pgvector adapters, a local server.

psycopg is imported only here and in the modules that use it, so the file backend never needs it.
"""

from __future__ import annotations

import struct
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from citeqa.errors import CiteqaError

DIM = 384


def masked(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password:
        host = parts.netloc.rsplit("@", 1)[-1]
        parts = parts._replace(netloc=f"{parts.username}:***@{host}")
    return urlunsplit(parts)


def lock_key(name: str) -> int:
    """A stable 63-bit advisory-lock key for ``name``."""
    return zlib.crc32(f"citeqa:{name}".encode()) + (1 << 40)


def vec_literal(v: np.ndarray) -> str:
    return "[" + ",".join(repr(float(x)) for x in np.asarray(v, np.float32).ravel()) + "]"


def _adapters(conn: Any) -> None:
    """Teach ``conn`` pgvector's ``vector`` type: NumPy arrays in, float32 arrays out (binary and text)."""
    from psycopg.adapt import Dumper, Loader
    from psycopg.pq import Format
    from psycopg.types import TypeInfo

    info = TypeInfo.fetch(conn, "vector")
    if info is None:
        raise CiteqaError("The database has no `vector` type: run `CREATE EXTENSION vector` as its owner "
                          "(pgvector must be installed on the server).")
    info.register(conn)

    class VecDumper(Dumper):
        format = Format.BINARY
        oid = info.oid

        def dump(self, obj: Any) -> bytes:
            a = np.asarray(obj, ">f4").ravel()
            return struct.pack(">HH", len(a), 0) + a.tobytes()

    class VecBinaryLoader(Loader):
        format = Format.BINARY

        def load(self, data: Any) -> np.ndarray:
            b = bytes(data)
            (dim,) = struct.unpack_from(">H", b)
            return np.frombuffer(b, ">f4", count=dim, offset=4).astype(np.float32)

    class VecTextLoader(Loader):
        def load(self, data: Any) -> np.ndarray:
            return np.array(bytes(data).strip(b"[]").split(b","), dtype=np.float32)

    conn.adapters.register_dumper(np.ndarray, VecDumper)
    conn.adapters.register_loader(info.oid, VecBinaryLoader)
    conn.adapters.register_loader(info.oid, VecTextLoader)


class Pool:
    """At most ``size`` autocommit connections, handed out one per thread at a time. A broken
    connection (server restarted, killed) is dropped and a new one made on the next request."""

    def __init__(self, url: str, size: int) -> None:
        self.url = url
        self._free: list[Any] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(size)
        self._schema_done = False

    def _connect(self) -> Any:
        import psycopg

        try:
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as e:
            reason = " ".join(str(e).split())
            raise CiteqaError(f"Cannot reach the database at {masked(self.url)} ({reason}). Start one "
                              "with `citeqa db start`, or set CITEQA_STORE to a reachable postgresql:// URL.") from e
        if not self._schema_done:
            self._apply_schema(conn)
        _adapters(conn)
        return conn

    def _apply_schema(self, conn: Any) -> None:
        sql = files("citeqa.backends").joinpath("schema.sql").read_text(encoding="utf-8")
        import psycopg

        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key("schema"),))
                conn.execute(sql)
        except psycopg.Error as e:
            raise CiteqaError(f"The citeqa schema could not be created in {masked(self.url)} ({e}). The database "
                              "needs the pgvector extension (`CREATE EXTENSION vector`).") from e
        self._schema_done = True

    @contextmanager
    def connection(self) -> Iterator[Any]:
        self._slots.acquire()
        conn = None
        try:
            with self._lock:
                conn = self._free.pop() if self._free else None
            if conn is None or conn.closed:
                conn = self._connect()
            yield conn
        except BaseException:
            if conn is not None and (conn.broken or conn.closed):
                conn = None
            raise
        finally:
            if conn is not None and not conn.closed:
                with self._lock:
                    self._free.append(conn)
            self._slots.release()

    def close(self) -> None:
        with self._lock:
            for c in self._free:
                c.close()
            self._free.clear()


_pools: dict[tuple[str, int], Pool] = {}
_pools_lock = threading.Lock()


def pool_for(url: str, size: int) -> Pool:
    with _pools_lock:
        p = _pools.get((url, size))
        if p is None:
            p = _pools[(url, size)] = Pool(url, size)
        return p


# --- a local server for trying it out and for tests (`citeqa db start`) ----------------------------------
def start_local(data_dir: Path, keep: bool = False) -> tuple[Any, str]:
    """Start (or reuse) PostgreSQL 16 with pgvector from the ``pgserver`` wheel in ``data_dir``:
    ``(server, url)``. ``keep``: the server outlives this process (until ``stop_local``); otherwise it
    stops when the process exits or ``server.cleanup()`` is called."""
    try:
        import pgserver
    except ImportError as e:
        raise CiteqaError("`citeqa db start` needs the pg extra: pip install -e '.[pg]'") from e
    data_dir.mkdir(parents=True, exist_ok=True)
    srv = pgserver.get_server(data_dir, cleanup_mode=None if keep else "stop")
    srv.psql("CREATE EXTENSION IF NOT EXISTS vector;")
    return srv, str(srv.get_uri())


def stop_local(data_dir: Path) -> None:
    import pgserver

    pgserver.get_server(data_dir, cleanup_mode="stop").cleanup()
