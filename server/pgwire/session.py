"""One client session: statements in, results out. No sockets here (see server.py).

A statement is prepared once (parsed with sqlglot's postgres dialect and classified), then run with
its parameters: utility statements (SET, SHOW, BEGIN, DECLARE/FETCH cursors, ...) are answered here,
queries over Canon's views go through `semantic.translate` and the compiler, catalog queries go to
the pg_catalog emulation.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import TokenType

from canon.compiler.catalog import Catalog
from canon.compiler.errors import CanonError

from ..runtime import Identity
from ..warehouses.base import QueryTicket

from . import types as t
from .dialect import PG
from .errors import (FEATURE_NOT_SUPPORTED, IN_FAILED_TRANSACTION, INVALID_CURSOR_NAME, SYNTAX_ERROR,
                     UNDEFINED_OBJECT, PgError, from_canon_error)
from .pgcatalog import SETTINGS, PgCatalog
from .post_aggregation import Engine, PostQuery
from .semantic import SemanticQuery, find_view_tables, param_index, translate
from .row_cap import within_row_cap
from .views import ViewTable, view_tables

READ_ONLY = {"INSERT", "UPDATE", "DELETE", "MERGE", "CREATE", "DROP", "ALTER", "TRUNCATE", "GRANT", "REVOKE",
             "COPY", "VACUUM", "ANALYZE", "CLUSTER", "REINDEX", "COMMENT", "LOCK", "REFRESH", "CALL", "DO",
             "IMPORT", "SECURITY", "REASSIGN", "CHECKPOINT", "LOAD"}
NO_OPS = {"LISTEN": "LISTEN", "UNLISTEN": "UNLISTEN", "NOTIFY": "NOTIFY", "SAVEPOINT": "SAVEPOINT",
          "RELEASE": "RELEASE"}


@dataclass
class Result:
    columns: list[tuple[str, int]] | None  # None: the statement returns no rows (NoData)
    rows: list[tuple] = field(default_factory=list)
    tag: str = ""
    notices: list[str] = field(default_factory=list)  # sent as NoticeResponse (deprecated metrics)
    batches: Iterator[list[tuple]] | None = None  # a running query's rows, pulled batch by batch (server.py)

    def materialize(self) -> "Result":
        """All rows in memory (SQL cursors, which FETCH moves through freely; the row cap bounds them)."""
        if self.batches is not None:
            self.rows = [row for batch in self.batches for row in batch]
            self.batches = None
        return self


@dataclass
class Prepared:
    text: str
    kind: str  # empty | utility | semantic | catalog | readonly | explain
    keyword: str = ""
    tree: exp.Expression | None = None
    tokens: list = field(default_factory=list)
    param_count: int = 0
    param_oids: list[int] = field(default_factory=list)
    copy: object | None = None  # COPY (…) TO STDOUT: its CopyOptions (copy_out.py)


class CatalogState:
    """The runtime's catalog as this server sees it, with its views and pg_catalog emulation, rebuilt
    when the runtime swaps in a new catalog version."""

    def __init__(self, runtime):
        self.runtime = runtime
        self._lock = threading.Lock()
        self._current: tuple[Catalog, dict[str, ViewTable], PgCatalog] | None = None

    def get(self, grant=None) -> tuple[Catalog, dict[str, ViewTable], PgCatalog]:
        catalog = self.runtime.catalog
        if grant is not None and not grant.open:
            return self._granted(catalog, grant)
        current = self._current
        if current is not None and current[0] is catalog:
            return current
        with self._lock:
            if self._current is None or self._current[0] is not catalog:
                views = view_tables(catalog)
                self._current = (catalog, views, PgCatalog(views))
            return self._current

    def _granted(self, catalog: Catalog, grant):
        """Views and pg_catalog without what an access grant hides: one emulation per distinct grant."""
        with self._lock:
            if getattr(self, "_granted_for", None) is not catalog:
                self._granted_for, self._by_grant = catalog, {}
            found = self._by_grant.get(grant.key)
            if found is None:
                views = view_tables(catalog, grant)
                found = self._by_grant[grant.key] = (catalog, views, PgCatalog(views))
            return found

    def for_identity(self, identity: Identity) -> "IdentityState":
        return IdentityState(self, identity)


class IdentityState:
    """The catalog state as one connected user sees it (their access grant applied)."""

    def __init__(self, base: CatalogState, identity: Identity):
        self.base, self.identity, self.runtime = base, identity, base.runtime

    def get(self) -> tuple[Catalog, dict[str, ViewTable], PgCatalog]:
        return self.base.get(self.runtime.grant(self.identity))


def split_statements(text: str) -> list[str]:
    """A simple Query may hold several statements separated by ';' (split on tokens, not text)."""
    try:
        tokens = sqlglot.tokenize(text, read=PG)
    except (TokenError, ValueError):
        return [text]
    parts, start = [], 0
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            parts.append(text[start:token.start])
            start = token.end + 1
    parts.append(text[start:])
    return [p for p in parts if p.strip()] or [""]


@dataclass(frozen=True)
class Tok:
    text: str
    token_type: TokenType
    start: int


def _tokens(text: str) -> list[Tok]:
    """The statement's tokens. sqlglot reads the rest of a command (DECLARE, FETCH, SHOW, EXPLAIN) as
    one string token; that rest is tokenized again so its words can be read."""
    try:
        raw = sqlglot.tokenize(text, read=PG)
        tokens = [Tok(tok.text, tok.token_type, tok.start) for tok in raw]
        if len(tokens) == 2 and tokens[1].token_type == TokenType.STRING and raw[0].token_type in (
                TokenType.COMMAND, TokenType.FETCH, TokenType.SHOW):
            offset = raw[0].end + 1
            rest = sqlglot.tokenize(text[offset:], read=PG)
            tokens = tokens[:1] + [Tok(tok.text, tok.token_type, tok.start + offset) for tok in rest]
        return tokens
    except (TokenError, ValueError) as error:
        raise PgError(SYNTAX_ERROR, f"cannot read the statement: {str(error).splitlines()[0][:200]}") from None


class Session:
    def __init__(self, state: CatalogState, *, user: str, database: str, pid: int):
        self.state = state
        self.runtime = state.runtime
        self.identity: Identity = getattr(state, "identity", None) or Identity(user=user, via="pgwire")
        self.ticket: QueryTicket | None = None  # the running query's; a CancelRequest stops it in the engine
        self.user = user
        self.database = database
        self.pid = pid
        self.tx = "I"  # I idle, T in transaction, E failed transaction
        self.settings: dict[str, str] = {}
        self.cursors: dict[str, "Cursor"] = {}
        self.port: int | None = None  # the server's port, for inet_server_port() (set by server.py)

    def info(self) -> dict:
        return {"user": self.user, "database": self.database, "pid": self.pid, "settings": self.settings,
                "port": self.port}

    # --- preparing ------------------------------------------------------------------------------------

    def prepare(self, text: str, param_oids: list[int] | None = None) -> Prepared:
        tokens = _tokens(text)
        if not tokens:
            return Prepared(text, "empty")
        keyword = tokens[0].text.upper()
        if keyword in ("SELECT", "WITH", "VALUES", "TABLE", "(") or tokens[0].token_type == TokenType.L_PAREN:
            prepared = self._prepare_query(text)
        elif keyword == "EXPLAIN":
            body_start = tokens[1].start if len(tokens) > 1 else len(text)
            inner = self._prepare_query(text[body_start:])
            prepared = replace(inner, kind="explain", text=text)
        elif keyword == "DECLARE":
            query_at = next((i for i, tok in enumerate(tokens) if tok.token_type == TokenType.FOR
                             or tok.text.upper() == "FOR"), None)
            if query_at is None or query_at + 1 >= len(tokens):
                raise PgError(SYNTAX_ERROR, "DECLARE name CURSOR FOR <query>")
            inner = self._prepare_query(text[tokens[query_at + 1].start:])
            prepared = replace(inner, kind="declare", text=text, keyword=keyword, tokens=tokens)
        elif keyword == "COPY":  # only COPY (query) TO STDOUT: the query runs as any other
            from .copy_out import parse_copy

            statement = parse_copy(text, tokens)
            prepared = replace(self._prepare_query(statement.query), text=text, keyword=keyword,
                               copy=statement.options)
        elif keyword in READ_ONLY:
            prepared = Prepared(text, "readonly", keyword, tokens=tokens)
        else:
            prepared = Prepared(text, "utility", keyword, tokens=tokens)
        if prepared.tree is not None:
            prepared.param_count = max((param_index(n) or 0 for n in prepared.tree.walk()), default=0)
            declared = list(param_oids or [])
            inferred = self._infer_param_types(prepared)
            prepared.param_oids = [declared[i] if i < len(declared) and declared[i] else inferred.get(i + 1, t.TEXT)
                                   for i in range(prepared.param_count)]
        return prepared

    def _prepare_query(self, text: str) -> Prepared:
        try:
            trees = [tree for tree in sqlglot.parse(text, read=PG) if tree is not None]
        except (ParseError, TokenError) as error:
            raise PgError(SYNTAX_ERROR, f"syntax error: {_first_line(error)}") from None
        if len(trees) != 1:
            raise PgError(SYNTAX_ERROR, "one statement at a time here", hint="split the statements")
        tree = trees[0].transform(_escape_strings)
        _, views, _ = self.state.get()
        kind = "semantic" if find_view_tables(tree, views) else "catalog"
        return Prepared(text, kind, tree=tree)

    def _infer_param_types(self, prepared: Prepared) -> dict[int, int]:
        found: dict[int, int] = {}
        _, views, _ = self.state.get()
        columns = {c.name.lower(): c.oid for v in views.values() for c in v.columns}
        for node in prepared.tree.walk():
            index = param_index(node)
            if index is None:
                continue
            parent = node.parent
            while isinstance(parent, (exp.Paren, exp.Tuple, exp.In, exp.Between)) and not isinstance(parent, exp.Binary):
                if isinstance(parent, (exp.In, exp.Between)):
                    break
                parent = parent.parent
            if isinstance(parent, (exp.Limit, exp.Offset)):
                found[index] = t.INT8
            elif isinstance(parent, exp.Any):  # col = ANY($1): an array of the column's type
                col = parent.parent.this if isinstance(parent.parent, exp.Binary) else None
                element = columns.get(col.name.lower(), t.TEXT) if isinstance(col, exp.Column) else t.TEXT
                found[index] = next((a for a, e in t.ARRAY_ELEMENTS.items() if e == element), t.TEXT_ARRAY)
            elif isinstance(parent, exp.Cast):
                found[index] = _cast_oid(parent)
            elif isinstance(parent, (exp.Binary, exp.In, exp.Between)):
                col = parent.this if isinstance(parent.this, exp.Column) else parent.args.get("expression")
                if isinstance(col, exp.Column) and col.name.lower() in columns and prepared.kind == "semantic":
                    found[index] = columns[col.name.lower()]
        return found

    # --- running --------------------------------------------------------------------------------------

    def check_transaction(self, prepared: Prepared) -> None:
        if self.tx == "E" and not (prepared.kind == "utility" and prepared.keyword in ("COMMIT", "END", "ROLLBACK", "ABORT")):
            raise PgError(IN_FAILED_TRANSACTION, "current transaction is aborted, commands ignored until end of "
                                                 "transaction block", hint="send ROLLBACK")

    def describe(self, prepared: Prepared, params: list | None) -> list[tuple[str, int]] | None:
        """Result columns of a statement without running it (None: no rows)."""
        if prepared.kind == "semantic":
            query = self._translate(prepared, params)
            if isinstance(query, PostQuery):
                return Engine().run(query, None)[0]  # the SQL over empty results: its columns and types
            return [(o.name, o.oid) for o in query.outputs]
        if prepared.kind == "catalog":
            return self.execute(prepared, params or [None] * prepared.param_count).columns
        if prepared.kind == "explain":
            return [("QUERY PLAN", t.TEXT)]
        if prepared.kind == "utility" and prepared.keyword == "SHOW":
            return self._show(prepared.tokens).columns
        if prepared.kind == "utility" and prepared.keyword in ("FETCH",):
            cursor = self._cursor(prepared.tokens[-1].text)
            return cursor.result.columns
        return None

    def execute(self, prepared: Prepared, params: list | None = None) -> Result:
        params = list(params or [])
        try:
            if prepared.kind == "empty":
                return Result(None, tag="")
            if prepared.kind == "semantic":
                query = self._translate(prepared, params)
                if isinstance(query, PostQuery):
                    return self._run_post(query)
                return self._run_semantic(query)
            if prepared.kind == "catalog":
                _, _, pgcat = self.state.get()
                from .semantic import bind_params

                columns, rows = pgcat.run(bind_params(prepared.tree, params), self.info())
                return Result(columns, rows, f"SELECT {len(rows)}")
            if prepared.kind == "explain":
                if prepared.tree is None or find_view_tables(prepared.tree, self.state.get()[1]) == []:
                    raise PgError(FEATURE_NOT_SUPPORTED, "EXPLAIN works on queries over Canon's views")
                query = self._translate(prepared, params)
                requests = [level.request for level in query.levels] if isinstance(query, PostQuery) \
                    else [self._request(query)]
                lines = []
                for request in requests:
                    compiled = self.runtime.prepare(request, identity=self._identity(),
                                                    catalog=self.state.get()[0]).compiled
                    sql = compiled.tree.sql(dialect=compiled.dialect, pretty=True)
                    lines += [(line,) for line in sql.splitlines()]
                if isinstance(query, PostQuery):
                    lines += [("-- then, over that result:",)] + [
                        (line,) for line in query.tree.sql(dialect="postgres", pretty=True).splitlines()]
                return Result([("QUERY PLAN", t.TEXT)], lines, "EXPLAIN")
            if prepared.kind == "declare":
                return self._declare(prepared, params)
            if prepared.kind == "readonly":
                raise PgError("25006", f"{prepared.keyword} is not available: Canon serves read-only metrics",
                              hint="change definitions in the YAML files under semantic_models/ and metrics/")
            return self._utility(prepared)
        except CanonError as error:
            raise from_canon_error(error) from None

    def _translate(self, prepared: Prepared, params) -> SemanticQuery:
        catalog, views, _ = self.state.get()
        if params is None or len(params) < prepared.param_count:
            params = list(params or []) + [None] * (prepared.param_count - len(params or []))
        try:
            return translate(prepared.tree, catalog, views, params)
        except (CanonError, PgError) as error:
            refused = error if isinstance(error, PgError) else from_canon_error(error)
            if refused.sqlstate in ("42703", "42P01") and self._hidden(prepared, params):
                raise PgError("42501", f"permission denied: the query reads a view or column that the access "
                                       f"policies hide from user {self.identity.user!r}",
                              hint="ask for the columns listed in information_schema.columns") from None
            raise refused from None

    def _hidden(self, prepared: Prepared, params) -> bool:
        """The query would translate against the unrestricted views: what it names exists, but not
        for this user (PostgreSQL answers 42501 there, not "does not exist")."""
        base = getattr(self.state, "base", None)
        if base is None:
            return False
        catalog, views, _ = base.get()
        try:
            translate(prepared.tree.copy(), catalog, views, params)
            return True
        except Exception:  # noqa: BLE001 — any failure: it is not merely hidden
            return False

    def _request(self, query: SemanticQuery):
        request = within_row_cap(query.request, self.runtime.limits.max_rows)  # SQL Lab's LIMIT 100001
        if query.having is not None:  # the compiler applies HAVING after aggregation, before order/limit
            request = replace(request, having=(query.having.sql(dialect="duckdb"),))
        return request

    def _identity(self) -> Identity:
        return self.identity

    def _run_post(self, query: PostQuery) -> Result:
        """Each level's request through the runtime (rows in memory, bounded by its row cap), then the
        checked SQL over them in a private DuckDB (post_aggregation.Engine)."""
        catalog, _, _ = self.state.get()
        rows_by_level, notices = [], []
        for level in query.levels:
            request = within_row_cap(level.request, self.runtime.limits.max_rows)
            prepared = self.runtime.prepare(request, identity=self._identity(), catalog=catalog)
            notices += list(prepared.warnings)
            index = {key: i for i, (key, _) in enumerate(prepared.compiled.columns)}
            picks = [index[key] for _, key, _ in level.columns]
            rows = [tuple(row[i] for i in picks) for batch in self.runtime.stream(prepared, ticket=self.ticket)
                    for row in batch]
            rows_by_level.append(rows)
        engine = Engine(max_rows=self.runtime.limits.max_rows)
        columns, rows = engine.run(query, rows_by_level)
        if engine.truncated:
            notices.append(f"the result has more than {engine.max_rows:,} rows and was cut there; "
                           "add filters or a limit")
        return Result(columns, rows, f"SELECT {len(rows)}", notices=notices)

    def _run_semantic(self, query: SemanticQuery) -> Result:
        """Start the query through the runtime; its rows stream to the client in batches (server.py)."""
        columns = [(o.name, o.oid) for o in query.outputs]
        if query.empty:
            return Result(columns, [], "SELECT 0")
        catalog, _, _ = self.state.get()
        prepared = self.runtime.prepare(self._request(query), identity=self._identity(), catalog=catalog)
        stream = self.runtime.stream(prepared, ticket=self.ticket)
        index = {key: i for i, (key, _) in enumerate(prepared.compiled.columns)}
        picks = [index[o.key] for o in query.outputs]

        as_is = picks == list(range(len(prepared.compiled.columns)))  # SELECT *: the engine's rows, untouched

        def batches():
            for batch in stream:
                yield batch if as_is else [tuple(row[i] for i in picks) for row in batch]

        return Result(columns, [], "SELECT", notices=list(prepared.warnings), batches=batches())

    # --- utility statements ---------------------------------------------------------------------------

    def _utility(self, prepared: Prepared) -> Result:
        keyword, tokens = prepared.keyword, prepared.tokens
        words = [tok.text.upper() for tok in tokens]
        if keyword in ("BEGIN", "START"):
            if self.tx == "I":
                self.tx = "T"
            return Result(None, tag="BEGIN" if keyword == "BEGIN" else "START TRANSACTION")
        if keyword in ("COMMIT", "END"):
            failed = self.tx == "E"
            self._end_transaction()
            return Result(None, tag="ROLLBACK" if failed else "COMMIT")
        if keyword in ("ROLLBACK", "ABORT"):
            if "TO" in words[1:]:
                if self.tx == "E":
                    self.tx = "T"
                return Result(None, tag="ROLLBACK")
            self._end_transaction()
            return Result(None, tag="ROLLBACK")
        if keyword == "SET":
            self._set(prepared.text, words)
            return Result(None, tag="SET")
        if keyword == "RESET":
            if len(words) > 1 and words[1] != "ALL":
                self.settings.pop(tokens[1].text.lower(), None)
            else:
                self.settings.clear()
            return Result(None, tag="RESET")
        if keyword == "SHOW":
            return self._show(tokens)
        if keyword == "DISCARD":
            self.settings.clear()
            self.cursors.clear()
            return Result(None, tag="DISCARD " + " ".join(words[1:2]) if len(words) > 1 else "DISCARD")
        if keyword == "DEALLOCATE":
            return Result(None, tag="DEALLOCATE ALL" if "ALL" in words[1:] else "DEALLOCATE")
        if keyword in ("FETCH", "MOVE"):
            return self._fetch(keyword, tokens)
        if keyword == "CLOSE":
            name = tokens[1].text if len(tokens) > 1 else ""
            if name.upper() == "ALL":
                self.cursors.clear()
            elif self.cursors.pop(name, None) is None:
                raise PgError(INVALID_CURSOR_NAME, f'cursor "{name}" does not exist')
            return Result(None, tag="CLOSE CURSOR")
        if keyword in NO_OPS:
            return Result(None, tag=NO_OPS[keyword])
        if keyword in ("PREPARE", "EXECUTE"):
            raise PgError(FEATURE_NOT_SUPPORTED, f"SQL-level {keyword} is not supported",
                          hint="use the extended query protocol (what drivers do for prepared statements)")
        raise PgError(SYNTAX_ERROR, f'syntax error at or near "{tokens[0].text}"',
                      hint="Canon answers SELECT over its views, catalog queries, SET/SHOW and transactions")

    def _end_transaction(self) -> None:
        self.tx = "I"
        for name in [n for n, c in self.cursors.items() if not c.hold]:
            del self.cursors[name]

    def _set(self, text: str, words: list[str]) -> None:
        try:
            tree = sqlglot.parse_one(text, read=PG)
        except (ParseError, TokenError):
            return
        if not isinstance(tree, exp.Set):
            return  # SET TIME ZONE, SET SESSION CHARACTERISTICS ...: accepted, nothing to keep
        for item in tree.expressions:
            assignment = item.this
            if isinstance(assignment, exp.EQ):
                name = assignment.this.sql("postgres").strip('"').lower()
                value = assignment.expression
                self.settings[name] = value.name if isinstance(value, (exp.Literal, exp.Identifier, exp.Column, exp.Var)) \
                    else value.sql("postgres")

    def _show(self, tokens) -> Result:
        words = [tok.text for tok in tokens[1:]]
        name = " ".join(words).lower()
        if name == "all":
            merged = {**SETTINGS, **self.settings}
            return Result([("name", t.TEXT), ("setting", t.TEXT), ("description", t.TEXT)],
                          [(k, v, "") for k, v in sorted(merged.items())], "SHOW")
        if name == "transaction isolation level":
            name = "transaction_isolation"
        key = name.replace(" ", "")
        value = self.settings.get(key, SETTINGS.get(key))
        if value is None:
            raise PgError(UNDEFINED_OBJECT, f'unrecognized configuration parameter "{name}"')
        return Result([(key, t.TEXT)], [(value,)], "SHOW")

    # --- SQL cursors (DECLARE / FETCH / CLOSE), as psycopg's and psycopg2's server-side cursors use ----

    def _declare(self, prepared: Prepared, params) -> Result:
        tokens = prepared.tokens
        name = tokens[1].text if len(tokens) > 1 else ""
        upper = [tok.text.upper() for tok in tokens]
        inner = replace(prepared, kind="semantic" if find_view_tables(prepared.tree, self.state.get()[1]) else "catalog")
        result = self.execute(inner, params).materialize()
        self.cursors[name] = Cursor(name, result, hold="HOLD" in upper and "WITHOUT" not in upper)
        return Result(None, tag="DECLARE CURSOR")

    def _cursor(self, name: str) -> "Cursor":
        cursor = self.cursors.get(name) or self.cursors.get(name.strip('"'))
        if cursor is None:
            raise PgError(INVALID_CURSOR_NAME, f'cursor "{name}" does not exist')
        return cursor

    def _fetch(self, keyword: str, tokens) -> Result:
        words = [tok.text.upper() for tok in tokens[1:]]
        cursor = self._cursor(tokens[-1].text)
        count = 1
        for word in words[:-1]:
            if word == "ALL":
                count = None
            elif word.lstrip("-").isdigit():
                count = int(word)
        rows = cursor.take(count)
        if keyword == "MOVE":
            return Result(None, tag=f"MOVE {len(rows)}")
        return Result(cursor.result.columns, rows, f"FETCH {len(rows)}")


@dataclass
class Cursor:
    name: str
    result: Result
    hold: bool = False
    position: int = 0

    def take(self, count: int | None) -> list[tuple]:
        end = len(self.result.rows) if count is None else self.position + max(count, 0)
        rows = self.result.rows[self.position:end]
        self.position += len(rows)
        return rows


def _cast_oid(cast: exp.Cast) -> int:
    name = cast.to.sql("postgres").lower() if cast.to is not None else ""
    if name.endswith("[]"):  # $1::text[] -> the array type of its element
        element = _cast_oid(exp.Cast(this=cast.this, to=exp.DataType.build(name[:-2], dialect="postgres")))
        return next((a for a, e in t.ARRAY_ELEMENTS.items() if e == element), t.TEXT_ARRAY)
    return {"int": t.INT4, "integer": t.INT4, "bigint": t.INT8, "int8": t.INT8, "smallint": t.INT2,
            "text": t.TEXT, "varchar": t.VARCHAR, "date": t.DATE, "timestamp": t.TIMESTAMP,
            "timestamptz": t.TIMESTAMPTZ, "timestamp with time zone": t.TIMESTAMPTZ,
            "boolean": t.BOOL, "bool": t.BOOL, "numeric": t.NUMERIC, "double precision": t.FLOAT8,
            "oid": t.OID, "regclass": t.TEXT, "name": t.TEXT}.get(name, t.TEXT)


def _escape_strings(node: exp.Expression) -> exp.Expression:
    """E'...' (escapes already read by the tokenizer) and $$...$$ (dollar-quoted) are plain strings."""
    if isinstance(node, (exp.ByteString, exp.RawString)):  # E'...' and $$...$$
        return exp.Literal.string(node.name)
    return node


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0][:300]
