"""Full-text search of a person's conversations: titles and message contents.

One function, `search_messages`, over two engines:

- SQLite: FTS5 tables with external content (`conversations_message_fts` over the messages'
  `content`, `conversations_conversation_fts` over the titles), kept in step by triggers.
- PostgreSQL: GIN indexes on `to_tsvector('english', ...)` of the same columns.

`install` creates them (called by migration 0004 and again after every `migrate`: on SQLite a
later migration that rebuilds the messages table drops its triggers, and this puts them back
and rebuilds the index).

Snippets come back as safe HTML: the engine marks the matches with two private-use
characters, everything is escaped, and only then are the marks turned into <mark> tags.
"""

import re
from dataclasses import dataclass

from django.db import connection
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

START, STOP = "\ue000", "\ue001"  # marks around a match; stripped from the text first
# The last word of a query also matches longer words ("kube" finds "kubernetes") from this
# length on: a prefix of one or two letters expands to thousands of words (0.5 s at 1,000,000
# messages), and a search runs at every pause in typing.
PREFIX_MIN = 3
SNIPPET_WORDS = 24

# (table, column, FTS table) for each indexed column.
_INDEXED = [
    ("conversations_message", "content", "conversations_message_fts"),
    ("conversations_conversation", "title", "conversations_conversation_fts"),
]
_PG_INDEXES = [
    ("conversations_message", "content", "message_content_search"),
    ("conversations_conversation", "title", "conversation_title_search"),
]
_TOKENIZER = "porter unicode61 remove_diacritics 2"


@dataclass
class Hit:
    conversation_id: int
    title: str
    message_id: int | None  # None when the title matched
    snippet: SafeString
    archived: bool

    @property
    def url(self) -> str:
        url = reverse("conversations:detail", args=[self.conversation_id])
        if self.message_id is None:
            return url
        return f"{url}?m={self.message_id}#message-{self.message_id}"


def search_messages(owner, query: str, *, limit: int = 30, folder_id: int | None = None) -> list[Hit]:
    """The owner's conversations whose title matches `query`, then matching messages, newest first.

    Newest is by id (the order rows were written), which both engines can read from the
    index without sorting every match.

    Deleted and temporary conversations never match; with `folder_id`, only that folder's do.
    Every word of the query must occur (the last one may be the start of a word, from
    PREFIX_MIN letters on).
    """
    words = _words(query)
    if not words:
        return []
    scope = _Scope(owner.pk, folder_id)
    if connection.vendor == "postgresql":
        titles, messages = _pg_search(scope, words, limit)
    else:
        titles, messages = _sqlite_search(scope, words, limit)
    return [_hit(row, title_match=True) for row in titles] + [_hit(row, title_match=False) for row in messages]


@dataclass
class _Scope:
    """Which conversations a search reads: the owner's live, kept ones (in one folder, when given)."""

    owner_id: int
    folder_id: int | None

    @property
    def sql(self) -> str:
        sql = "c.owner_id = %s AND c.deleted_at IS NULL AND NOT c.temporary"
        return sql + (" AND c.folder_id = %s" if self.folder_id is not None else "")

    @property
    def params(self) -> list[int]:
        return [self.owner_id] if self.folder_id is None else [self.owner_id, self.folder_id]


def _words(query: str) -> list[str]:
    return re.findall(r"\w+", query.lower())[:12]


def _hit(row, *, title_match: bool) -> Hit:
    conversation_id, title, message_id, snippet, archived = row
    return Hit(
        conversation_id=conversation_id,
        title=title,
        message_id=None if title_match else message_id,
        snippet=highlight(snippet or ""),
        archived=bool(archived),
    )


def highlight(marked: str) -> SafeString:
    """Escape a snippet, then turn the engine's match marks into <mark> tags (balanced)."""
    parts = []
    open_ = False
    for piece in re.split(f"([{START}{STOP}])", marked):
        if piece == START:
            if not open_:
                parts.append("<mark>")
                open_ = True
        elif piece == STOP:
            if open_:
                parts.append("</mark>")
                open_ = False
        else:
            parts.append(str(escape(piece)))
    if open_:
        parts.append("</mark>")
    return mark_safe("".join(parts))  # noqa: S308 - every piece of text was escaped above


# --- SQLite: FTS5 ---------------------------------------------------------------------


def _fts_query(words: list[str]) -> str:
    # Each word quoted, so nothing the person types is FTS5 syntax; the last is a prefix.
    terms = [f'"{word}"' for word in words]
    if len(words[-1]) >= PREFIX_MIN:
        terms[-1] += "*"
    return " ".join(terms)


def _sqlite_search(scope: _Scope, words: list[str], limit: int):
    # CROSS JOIN fixes the join order: the full-text index first, newest match first (FTS5
    # walks rowids backwards), stopping at the limit. Left to itself, SQLite may walk all
    # the owner's conversations and probe the index for each.
    match = _fts_query(words)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.id, c.title, NULL, highlight(conversations_conversation_fts, 0, %s, %s), "  # noqa: S608 - _Scope's SQL is constant
            "c.archived_at IS NOT NULL "
            "FROM conversations_conversation_fts f CROSS JOIN conversations_conversation c ON c.id = f.rowid "
            f"WHERE conversations_conversation_fts MATCH %s AND {scope.sql} "
            "ORDER BY f.rowid DESC LIMIT 10",
            [START, STOP, match, *scope.params],
        )
        titles = cursor.fetchall()
        cursor.execute(
            "SELECT c.id, c.title, m.id, snippet(conversations_message_fts, 0, %s, %s, '…', %s), "  # noqa: S608 - as above
            "c.archived_at IS NOT NULL "
            "FROM conversations_message_fts f "
            "CROSS JOIN conversations_message m ON m.id = f.rowid "
            "CROSS JOIN conversations_conversation c ON c.id = m.conversation_id "
            f"WHERE conversations_message_fts MATCH %s AND {scope.sql} "
            "ORDER BY f.rowid DESC LIMIT %s",
            [START, STOP, SNIPPET_WORDS, match, *scope.params, limit],
        )
        return titles, cursor.fetchall()


# --- PostgreSQL: GIN indexes on to_tsvector -------------------------------------------


def _tsquery(words: list[str]) -> str:
    # Built from \w+ words only, so it is always a valid tsquery.
    terms = [f"'{word}'" for word in words]
    if len(words[-1]) >= PREFIX_MIN:
        terms[-1] += ":*"
    return " & ".join(terms)


# Up to this many matches (of everyone's), a search reads them all from the GIN index and
# sorts them; beyond, the word is common and reading the newest rows backwards finds the
# first matches soon. PostgreSQL cannot estimate a rare word's matches (it keeps statistics
# for frequent words only), and left alone it walks a million rows backwards for a word
# that occurs once.
PG_ALL_MATCHES = 2000


def _pg_search(scope: _Scope, words: list[str], limit: int):
    tsquery = _tsquery(words)
    options = f"StartSel={START}, StopSel={STOP}, MaxWords={SNIPPET_WORDS}, MinWords=8, MaxFragments=1"
    with connection.cursor() as cursor:
        titles = _pg_query(
            cursor,
            select="c.id, c.title, NULL, ts_headline('english', c.title, to_tsquery('english', %s), %s), "
            "c.archived_at IS NOT NULL",
            select_params=[tsquery, options],
            table="conversations_conversation",
            column="c.title",
            alias="c",
            joins="",
            scope=scope,
            tsquery=tsquery,
            limit=10,
        )
        messages = _pg_query(
            cursor,
            select="c.id, c.title, m.id, ts_headline('english', m.content, to_tsquery('english', %s), %s), "
            "c.archived_at IS NOT NULL",
            select_params=[tsquery, options],
            table="conversations_message",
            column="m.content",
            alias="m",
            joins="JOIN conversations_conversation c ON c.id = m.conversation_id",
            scope=scope,
            tsquery=tsquery,
            limit=limit,
        )
    return titles, messages


def _pg_query(cursor, *, select, select_params, table, column, alias, joins, scope, tsquery, limit):
    cursor.execute(
        f"SELECT {alias}.id FROM {table} {alias} WHERE to_tsvector('english', {column}) @@ to_tsquery('english', %s) "  # noqa: S608 - identifiers are this module's constants
        f"LIMIT {PG_ALL_MATCHES + 1}",
        [tsquery],
    )
    ids = [row[0] for row in cursor.fetchall()]
    if not ids:
        return []
    if len(ids) <= PG_ALL_MATCHES:
        match, match_params = f"{alias}.id = ANY(%s)", [ids]
    else:
        match, match_params = f"to_tsvector('english', {column}) @@ to_tsquery('english', %s)", [tsquery]
    # The inner query picks the rows; the headline is computed for those only.
    cursor.execute(
        f"SELECT {select} FROM (SELECT {alias}.* FROM {table} {alias} {joins} "  # noqa: S608 - identifiers are this module's constants
        f"WHERE {match} AND {scope.sql} ORDER BY {alias}.id DESC LIMIT %s) {alias} {joins} ORDER BY {alias}.id DESC",
        [*select_params, *match_params, *scope.params, limit],
    )
    return cursor.fetchall()


# --- Installing the indexes -----------------------------------------------------------


def install(schema_connection) -> None:
    """Create the search indexes for this engine (idempotent); rebuild an FTS table whose triggers were lost."""
    if schema_connection.vendor == "sqlite":
        _install_sqlite(schema_connection)
    elif schema_connection.vendor == "postgresql":
        with schema_connection.cursor() as cursor:
            for table, column, name in _PG_INDEXES:
                cursor.execute(
                    f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING GIN (to_tsvector('english', {column}))"
                )


def uninstall(schema_connection) -> None:
    with schema_connection.cursor() as cursor:
        if schema_connection.vendor == "sqlite":
            for _table, _column, fts in _INDEXED:
                for suffix in ("ai", "ad", "au"):
                    cursor.execute(f"DROP TRIGGER IF EXISTS {fts}_{suffix}")
                cursor.execute(f"DROP TABLE IF EXISTS {fts}")
        elif schema_connection.vendor == "postgresql":
            for _table, _column, name in _PG_INDEXES:
                cursor.execute(f"DROP INDEX IF EXISTS {name}")


def _install_sqlite(schema_connection) -> None:
    with schema_connection.cursor() as cursor:
        for table, column, fts in _INDEXED:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s", [table])
            triggers = {name for (name,) in cursor.fetchall()}
            complete = {f"{fts}_ai", f"{fts}_ad", f"{fts}_au"} <= triggers
            cursor.execute(
                f"CREATE VIRTUAL TABLE IF NOT EXISTS {fts} USING fts5("
                f"{column}, content='{table}', content_rowid='id', tokenize='{_TOKENIZER}')"
            )
            cursor.execute(
                f"CREATE TRIGGER IF NOT EXISTS {fts}_ai AFTER INSERT ON {table} BEGIN "  # noqa: S608 - identifiers are this module's constants
                f"INSERT INTO {fts}(rowid, {column}) VALUES (new.id, new.{column}); END"
            )
            cursor.execute(
                f"CREATE TRIGGER IF NOT EXISTS {fts}_ad AFTER DELETE ON {table} BEGIN "  # noqa: S608 - identifiers are this module's constants
                f"INSERT INTO {fts}({fts}, rowid, {column}) VALUES ('delete', old.id, old.{column}); END"
            )
            cursor.execute(
                f"CREATE TRIGGER IF NOT EXISTS {fts}_au AFTER UPDATE OF {column} ON {table} BEGIN "  # noqa: S608 - identifiers are this module's constants
                f"INSERT INTO {fts}({fts}, rowid, {column}) VALUES ('delete', old.id, old.{column}); "
                f"INSERT INTO {fts}(rowid, {column}) VALUES (new.id, new.{column}); END"
            )
            if not complete:
                cursor.execute(f"INSERT INTO {fts}({fts}) VALUES ('rebuild')")  # noqa: S608 - identifiers are this module's constants
