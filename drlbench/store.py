"""SQLite result store: every finished cell persisted at once, so a sweep can resume.

One file, three tables:
    meta   (key, value)          schema_version and creation time
    runs   one row per sweep     arguments (JSON), machine info, library versions, started / finished
    cells  one row per cell      keyed by (agent, variant, runtime, episodes, seed), the CellResult as JSON

Durability: each `put` is its own transaction, committed before it returns. We keep SQLite's default
rollback journal with synchronous=FULL rather than WAL: a committed cell is then in the main file
itself (no -wal sidecar waiting for a checkpoint), so copying the one .sqlite file copies every
finished cell, and a SIGKILL or power cut at any moment leaves either the old or the new state.
WAL's faster writes buy nothing at one commit per cell (seconds apart); readers (a report while a
sweep runs) still work, waiting out a commit through the busy timeout.
"""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, NamedTuple

from drlbench.errors import DrlbenchError
from drlbench.provenance import library_versions, machine_info
from drlbench.results import CellResult
from drlbench.variants import parse_variant

SCHEMA_VERSION = 1
_SQLITE_MAGIC = b"SQLite format 3\x00"
_BUSY_TIMEOUT_S = 30.0
_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    args_json TEXT NOT NULL,
    machine_json TEXT NOT NULL,
    versions_json TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT
);
CREATE TABLE cells (
    agent TEXT NOT NULL,
    variant TEXT NOT NULL,
    runtime TEXT NOT NULL,
    episodes INTEGER NOT NULL,
    seed INTEGER NOT NULL,
    run_id INTEGER REFERENCES runs(id),
    written_at TEXT NOT NULL,
    result_json TEXT NOT NULL,
    PRIMARY KEY (agent, variant, runtime, episodes, seed)
);
"""
_KEY_COLUMNS = ("agent", "variant", "runtime", "episodes", "seed")


class CellKey(NamedTuple):
    agent: str
    variant: str
    runtime: str
    episodes: int
    seed: int

    @classmethod
    def of(cls, cell: CellResult) -> "CellKey":
        return cls.make(cell.agent, cell.variant, cell.runtime, cell.episodes, cell.seed)

    @classmethod
    def make(cls, agent: str, variant, runtime: str, episodes: int, seed: int) -> "CellKey":
        """Canonical key: variant (a Recipe, or a name parsed here) spelled as parse_variant spells it
        (`prune-l2-30` -> `prune_l2_30`)."""
        return cls(str(agent), parse_variant(variant).name, str(runtime), int(episodes), int(seed))


class DuplicateCellError(DrlbenchError):
    """A put of a key the store already holds, without replace=True."""


class _Absent:
    def __repr__(self) -> str:
        return "(absent)"


ABSENT = _Absent()  # stands for an argument one side of check_args does not have


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _to_json(obj: Any) -> str:
    # numpy scalars / arrays slip into results easily; store them as plain numbers / lists
    def plain(o):
        if hasattr(o, "tolist"):
            return o.tolist()
        raise TypeError(f"{type(o).__name__} is not JSON serializable")

    return json.dumps(obj, sort_keys=True, default=plain)


def _normalized_args(args: dict) -> dict:
    """Args as they read back from JSON (tuples -> lists, paths -> str), so comparisons are fair."""
    return json.loads(json.dumps(args, sort_keys=True, default=str))


def _check_is_sqlite(path: Path) -> None:
    if path.is_dir():
        raise DrlbenchError(f"result store {path} is a directory; expected a SQLite file (e.g. results.db)")
    if path.exists() and path.stat().st_size > 0:
        with path.open("rb") as fh:
            if fh.read(len(_SQLITE_MAGIC)) != _SQLITE_MAGIC:
                raise DrlbenchError(f"{path} is not a SQLite file; expected a drlbench result store "
                                    f"(SQLite, schema version {SCHEMA_VERSION}) or a path that does not exist yet")


class ResultStore:
    """Finished cells of one or more sweeps, in one SQLite file. Use as a context manager or close()."""

    def __init__(self, path: str | os.PathLike, create: bool = True):
        self.path = Path(path)
        self._create = create
        if not create and not self.path.exists():
            raise DrlbenchError(f"no result store at {self.path}; run drlbench sweep first")
        _check_is_sqlite(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # autocommit mode: transactions are explicit (BEGIN IMMEDIATE … COMMIT) in _transaction
        self._db = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None)
        self._db.execute("PRAGMA synchronous=FULL")
        try:
            self._open_schema()
        except BaseException:
            self._db.close()
            raise

    # --- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "ResultStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _transaction(self):
        return _Transaction(self._db)

    def _open_schema(self) -> None:
        try:
            tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.DatabaseError as exc:  # right magic, damaged body
            raise DrlbenchError(f"{self.path} is not a readable SQLite database ({exc}); "
                                "expected a drlbench result store") from None
        if not tables:
            if not self._create:  # a reader never turns an empty file into a store
                raise DrlbenchError(f"{self.path} is an empty file, not a drlbench result store; "
                                    "run drlbench sweep first")
            with self._transaction() as db:  # IF NOT EXISTS / OR IGNORE: two processes may create it at once
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    db.execute(statement.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS"))
                db.executemany("INSERT OR IGNORE INTO meta VALUES (?, ?)",
                               [("schema_version", str(SCHEMA_VERSION)), ("created_at", now_iso())])
            return
        if "meta" not in tables:
            raise DrlbenchError(f"{self.path} is a SQLite database but not a drlbench result store (no meta "
                                f"table; tables: {', '.join(sorted(tables))}); expected schema version "
                                f"{SCHEMA_VERSION} or a new path")
        row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        found = row[0] if row else None
        if found != str(SCHEMA_VERSION):
            raise DrlbenchError(f"result store {self.path} has schema version {found}; this drlbench reads "
                                f"schema version {SCHEMA_VERSION} (write to another path: drlbench sweep --out NEW.db)")

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0])

    # --- runs ------------------------------------------------------------------------------
    def start_run(self, args: dict, machine: dict | None = None, versions: dict | None = None) -> int:
        """Record a sweep's start; returns its run id (pass it to put and finish_run)."""
        row = (_to_json(_normalized_args(args)), _to_json(machine_info() if machine is None else machine),
               _to_json(library_versions() if versions is None else versions), now_iso())
        with self._transaction() as db:
            cur = db.execute("INSERT INTO runs (args_json, machine_json, versions_json, started_at) "
                             "VALUES (?, ?, ?, ?)", row)
        return int(cur.lastrowid)

    def finish_run(self, run_id: int, summary: dict | None = None) -> None:
        """Record a run's end and its summary (the sweep's efficiency, physics seconds, …). The summary lives
        in the meta table under run_summary:<id>, so stores written before it existed keep their schema."""
        with self._transaction() as db:
            db.execute("UPDATE runs SET finished_at=? WHERE id=?", (now_iso(), run_id))
            if summary is not None:
                db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (f"run_summary:{run_id}", _to_json(summary)))

    def runs(self) -> list[dict]:
        rows = self._db.execute("SELECT id, args_json, machine_json, versions_json, started_at, finished_at "
                                "FROM runs ORDER BY id").fetchall()
        summaries = {k.removeprefix("run_summary:"): json.loads(v) for k, v in
                     self._db.execute("SELECT key, value FROM meta WHERE key LIKE 'run_summary:%'")}
        return [{"id": r[0], "args": json.loads(r[1]), "machine": json.loads(r[2]), "versions": json.loads(r[3]),
                 "started_at": r[4], "finished_at": r[5], "summary": summaries.get(str(r[0]))} for r in rows]

    def recorded_args(self) -> dict | None:
        """The arguments of the store's first sweep: the ones every later sweep is checked against."""
        row = self._db.execute("SELECT args_json FROM runs ORDER BY id LIMIT 1").fetchone()
        return json.loads(row[0]) if row else None

    def check_args(self, args: dict, ignore: Iterable[str] = ()) -> dict[str, tuple]:
        """Arguments that differ from the recorded ones, as {name: (recorded, new)}.

        Empty when the store has no run yet or everything matches. Names in `ignore` (progress bars,
        worker counts …) are not compared; the caller decides what a difference means.
        """
        recorded = self.recorded_args()
        if recorded is None:
            return {}
        new, skip = _normalized_args(args), set(ignore)
        diff = {name: (recorded.get(name, ABSENT), new.get(name, ABSENT))
                for name in sorted((set(recorded) | set(new)) - skip)
                if recorded.get(name, ABSENT) != new.get(name, ABSENT)}
        return diff

    # --- cells -----------------------------------------------------------------------------
    def put(self, cell: CellResult, run_id: int | None = None, replace: bool = False) -> CellKey:
        """Persist one finished cell, committed before returning.

        A key already in the store is refused (DuplicateCellError) unless replace=True: a sweep that
        recomputes a finished cell has a resume bug, and silently overwriting would hide it.
        """
        if not isinstance(cell, CellResult):
            raise DrlbenchError(f"put expects a CellResult, got {type(cell).__name__}")
        key = CellKey.of(cell)
        payload = _to_json(cell.to_dict() | {"variant": key.variant})
        with self._transaction() as db:
            exists = db.execute(f"SELECT 1 FROM cells WHERE {_KEY_WHERE}", key).fetchone()
            if exists and not replace:
                raise DuplicateCellError(f"cell {_show(key)} is already in result store {self.path}; "
                                         "a finished cell is never recomputed (pass replace=True to overwrite)")
            db.execute("INSERT OR REPLACE INTO cells VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (*key, run_id, now_iso(), payload))
        return key

    def fingerprints(self, agent: str) -> set[str]:
        """Weight fingerprints the agent's stored cells were measured on (cells from stores written
        before fingerprints existed carry none and are left out)."""
        return {c.agent_fingerprint for c in self.cells(agent=agent)} - {None}

    def check_weights(self, agent: str, fingerprint: str, *, replace: bool = False, hint: str) -> int:
        """Finished cells are reused by id: refuse a store holding cells of `agent` measured on other weights
        (fingerprint) than the ones now under its id (`hint`: what to do instead). With `replace`, delete the
        agent's cells in one transaction, to be measured again; returns how many were deleted."""
        stored = self.fingerprints(agent)
        if not stored or stored == {fingerprint}:
            return 0
        if not replace:
            raise DrlbenchError(f"{self.path} holds cells of {agent} measured on other weights (fingerprint "
                                f"{', '.join(sorted(stored))}, now {fingerprint}): its weights or normalization "
                                f"changed since; {hint}")
        with self._transaction() as db:
            return db.execute("DELETE FROM cells WHERE agent=?", (agent,)).rowcount

    def has(self, key: CellKey | tuple) -> bool:
        return self._db.execute(f"SELECT 1 FROM cells WHERE {_KEY_WHERE}", CellKey.make(*key)).fetchone() is not None

    def get(self, key: CellKey | tuple) -> CellResult | None:
        row = self._db.execute(f"SELECT result_json FROM cells WHERE {_KEY_WHERE}", CellKey.make(*key)).fetchone()
        return CellResult.from_dict(json.loads(row[0])) if row else None

    def cells(self, agent: str | None = None, variant: str | None = None, runtime: str | None = None,
              episodes: int | None = None, seed: int | None = None) -> list[CellResult]:
        """Stored cells matching every given key column, ordered by agent then variant."""
        given = {"agent": agent, "variant": parse_variant(variant).name if variant is not None else None,
                 "runtime": runtime, "episodes": episodes, "seed": seed}
        given = {k: v for k, v in given.items() if v is not None}
        where = " AND ".join(f"{k}=?" for k in given) or "1"
        rows = self._db.execute(f"SELECT result_json FROM cells WHERE {where} ORDER BY agent, variant, runtime, "
                                "episodes, seed", tuple(given.values()))
        return [CellResult.from_dict(json.loads(r[0])) for r in rows]

    def done_keys(self) -> set[CellKey]:
        """Keys of every finished cell: a resuming sweep skips these."""
        return {CellKey(*r) for r in self._db.execute(f"SELECT {', '.join(_KEY_COLUMNS)} FROM cells")}

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM cells").fetchone()[0])

    def __repr__(self) -> str:
        return f"ResultStore({str(self.path)!r})"


_KEY_WHERE = " AND ".join(f"{c}=?" for c in _KEY_COLUMNS)


def _show(key: CellKey) -> str:
    return f"{key.agent} × {key.variant} ({key.runtime}, {key.episodes} episodes from seed {key.seed})"


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, rolled back on any exception: the write lock is taken up front, so a
    check-then-insert (put's duplicate test) cannot interleave with another writer."""

    def __init__(self, db: sqlite3.Connection):
        self._db = db

    def __enter__(self) -> sqlite3.Connection:
        self._db.execute("BEGIN IMMEDIATE")
        return self._db

    def __exit__(self, exc_type, *_) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")
