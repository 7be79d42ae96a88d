"""A persistent translation cache shared by runs and by processes running at the same time.

sqlite in WAL mode lets many readers work while one process writes; a writer that finds the
database locked waits (busy timeout) and retries with backoff, so two jobs filling the same
cache never lose rows or crash. A row is keyed by backend, options fingerprint, languages, kind
("word"/"sentence") and text; a NULL result records "the backend cannot translate this", so an
untranslatable word is not sent again.
"""

from __future__ import annotations

import os
import random
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..errors import ConfigError, LangshiftError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS translations (
    backend TEXT NOT NULL, fingerprint TEXT NOT NULL, src TEXT NOT NULL, tgt TEXT NOT NULL,
    kind TEXT NOT NULL, text TEXT NOT NULL, result TEXT,
    PRIMARY KEY (backend, fingerprint, src, tgt, kind, text)
) WITHOUT ROWID
"""
_CHUNK = 500  # rows per IN (...) query, far below sqlite's variable limit
_RETRIES = 8


class TranslationCache:
    """``get_many`` / ``put_many`` over one sqlite file; safe across processes (not across threads)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if self.path.is_dir():
            raise ConfigError("cache", str(self.path), "is a folder; give a file path such as cache.sqlite")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn: sqlite3.Connection | None = None
        self._pid = -1

    # sqlite connections must not cross fork(); reopen in a child process
    def _db(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():
            try:
                conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
                conn.execute("PRAGMA busy_timeout=30000")
                self._retry(lambda: conn.execute("PRAGMA journal_mode=WAL"))
                self._retry(lambda: conn.execute(_SCHEMA))
            except sqlite3.DatabaseError as exc:
                raise LangshiftError(f"cache={str(self.path)!r}: cannot open it as a sqlite translation cache "
                                     f"({exc}); delete the file or give another path") from exc
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    @staticmethod
    def _retry(fn):
        for attempt in range(_RETRIES):
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc) or attempt == _RETRIES - 1:
                    raise
                time.sleep(0.05 * 2**attempt * (1 + random.random()))
        return None

    def get_many(self, key: Sequence[str], kind: str, texts: Iterable[str]) -> dict[str, str | None]:
        """Cached results for ``texts`` (absent texts are missing from the dict; None = untranslatable)."""
        backend, fingerprint, src, tgt = key
        texts = list(dict.fromkeys(texts))
        found: dict[str, str | None] = {}
        db = self._db()
        for i in range(0, len(texts), _CHUNK):
            part = texts[i:i + _CHUNK]
            sql = (f"SELECT text, result FROM translations WHERE backend=? AND fingerprint=? AND src=? AND tgt=? "
                   f"AND kind=? AND text IN ({','.join('?' * len(part))})")
            rows = self._retry(lambda sql=sql, part=part: db.execute(
                sql, (backend, fingerprint, src, tgt, kind, *part)).fetchall())
            found.update(rows)
        return found

    def put_many(self, key: Sequence[str], kind: str, items: dict[str, str | None]) -> None:
        """Store results in one transaction (an existing row is replaced: last writer wins)."""
        backend, fingerprint, src, tgt = key
        rows = [(backend, fingerprint, src, tgt, kind, t, r) for t, r in items.items()]
        if not rows:
            return
        db = self._db()

        def write():
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany("INSERT OR REPLACE INTO translations VALUES (?,?,?,?,?,?,?)", rows)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

        self._retry(write)

    def count(self) -> int:
        return self._db().execute("SELECT COUNT(*) FROM translations").fetchone()[0]

    def close(self) -> None:
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None
