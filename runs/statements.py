"""The hot path's writes as statements compiled once per process (issue 16: step cost).

Every step of every run writes the run row (a fenced UPDATE) and inserts its step row. Built
through ``QuerySet.update`` and ``Manager.create``, each statement cost more CPU in Django's
query building than Postgres spent running it: measured side by side on Postgres, the
UPDATE took 0.97 ms of CPU against 0.40 as compiled SQL, the INSERT 0.84 against 0.37.

Here Django's own compiler writes each statement's SQL the first time a shape (model,
columns, which values are NULL) is seen; afterwards only the values are adapted — by the
same ``Field.get_db_prep_save`` the compiler calls, so a value is stored exactly as the ORM
would store it on every backend — and the statement is executed. What is not done: model
signals (nothing listens to a step's or a checkpoint's save) and expressions as values
(``F()`` — these statements write plain values; ask the ORM for the rest).

``update_where_then_insert`` is the checkpoint's write: the step row — and the team
budget's UPDATE, when it is the only one — only when the run's fence matched, one statement
on Postgres (measured side by side, each step p50: 0.25 ms less for the step row, 0.2–0.27
ms less again for the budget's row).

``update`` keeps the ORM for statements with expressions (the team budget's conditional
UPDATEs): the queryset is built and compiled once per shape, and later calls
bind their values, given in the order the compiled SQL takes them. The first call checks
that order against the ORM's own parameters, so a Django whose compiler orders them
otherwise fails at once instead of binding a value to the wrong column.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connections
from django.db.models import Model, Q, QuerySet
from django.db.models.sql import InsertQuery, UpdateQuery

_compiled: dict[Hashable, str] = {}


def update_where(model: type[Model], where: dict[str, Any], values: dict[str, Any],
                 using: str = "default") -> int:
    """``UPDATE model SET values WHERE`` each of ``where`` equals its value (``field=value``
    pairs of concrete fields); the number of rows changed — 0 when the fence refused."""
    return run(_update_statement(model, where, values, using), using)


def _update_statement(model: type[Model], where: dict[str, Any], values: dict[str, Any],
                      using: str) -> Statement:
    connection = connections[using]
    meta = model._meta
    if any(hasattr(value, "resolve_expression") for value in values.values()):
        raise TypeError(f"UPDATE of {model.__name__}: plain values only; write expressions "
                        "(F(), functions) through the ORM")
    set_fields = [meta.get_field(name) for name in values]
    params = [field.get_db_prep_save(value, connection=connection)
              for field, value in zip(set_fields, values.values(), strict=True)
              if value is not None]  # a None is written as the literal NULL
    params += [meta.get_field(name).get_db_prep_value(value, connection, prepared=False)
               for name, value in where.items()]
    key = ("update", model, tuple(values), tuple(v is None for v in values.values()),
           tuple(where), using)
    sql = _compiled.get(key)
    if sql is None:
        # Q(*pairs) keeps their order (filter(**where) sorts them): the parameters' order
        conditions = Q(*where.items())
        query = model._base_manager.using(using).filter(conditions).query.chain(UpdateQuery)
        query.add_update_values(values)
        sql, django_params = query.get_compiler(using).as_sql()
        _check(len(django_params), len(params), model, "UPDATE")
        _compiled[key] = sql
    return Statement(sql, tuple(params))


@dataclass(frozen=True)
class Fenced:
    """What ``update_where_then_insert`` wrote."""

    matched: bool  # the fence matched: the row was updated and ``obj`` inserted
    then_rows: int = 0  # the rows ``then`` changed (0 when the fence refused)


def update_where_then_insert(model: type[Model], where: dict[str, Any],
                             values: dict[str, Any], obj: Model, using: str = "default", *,
                             then: Statement | None = None) -> Fenced:
    """``update_where`` and, only when its fence matched, ``insert(obj)`` and ``then`` (an
    UPDATE of another table): all of it or nothing.

    On Postgres it is one statement — the UPDATE in a ``WITH`` that the INSERT selects
    from (``INSERT … SELECT … FROM fenced``: no row to select, nothing inserted), ``then``
    in a second ``WITH`` that changes nothing unless ``fenced`` has its row — so a
    checkpoint pays one parse, plan and round trip per statement fewer on every step. The
    fenced UPDATE still locks its row before ``then`` locks any: ``then`` runs when the
    INSERT's ``RETURNING`` counts its rows, after the INSERT read ``fenced``, or at the end
    of the statement when there was nothing to insert. (``then`` must not change a row
    ``fenced`` changes: one statement changes a row once.) Elsewhere (SQLite has no UPDATE
    in a WITH) these are the statements one after the other, in the caller's transaction
    either way."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        if not update_where(model, where, values, using):
            return Fenced(matched=False)
        insert(obj, using)
        return Fenced(matched=True, then_rows=run(then, using) if then is not None else 0)
    update, insert_ = _update_statement(model, where, values, using), _insert_statement(obj, using)
    key = ("update+insert", update.sql, insert_.sql, then.sql if then is not None else None)
    sql = _compiled.get(key)
    if sql is None:
        sql = _compiled[key] = _fenced_sql(update.sql, insert_.sql, then, type(obj))
    params = [*update.params, *(then.params if then is not None else ()), *insert_.params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        written = cursor.fetchone()
    if written is None:
        return Fenced(matched=False)
    _saved(obj, written[0], using)
    return Fenced(matched=True, then_rows=written[1] if then is not None else 0)


def _fenced_sql(update_sql: str, insert_sql: str, then: Statement | None,
                model: type[Model]) -> str:
    match = _INSERT.fullmatch(insert_sql)
    if match is None:
        raise TypeError(f"INSERT of {model.__name__} is not INSERT … VALUES (…) "
                        f"RETURNING …: {insert_sql}")
    into, row, returning = match.groups()
    ctes = f"fenced AS ({update_sql} RETURNING 1)"
    if then is not None:
        if " WHERE " not in then.sql:  # Django's WHERE is the UPDATE's last clause
            raise TypeError(f"an UPDATE after a fence needs a WHERE: {then.sql}")
        only_if_fenced = "AND EXISTS (SELECT 1 FROM fenced)"
        ctes += f", then_ AS ({then.sql} {only_if_fenced} RETURNING 1)"
        returning += ", (SELECT count(*) FROM then_)"
    # Django's compiled statements only: the values are parameters
    return f"WITH {ctes} {into} SELECT {row} FROM fenced{returning}"  # nosec B608


# A single-row INSERT as Django's Postgres compiler writes it, returning the primary key.
_INSERT = re.compile(r"(INSERT INTO .+?\)) VALUES \((.+)\)( RETURNING [^()]+)", re.DOTALL)


def insert(obj: Model, using: str = "default") -> Model:
    """``obj.save()`` of a new row (``INSERT … RETURNING`` its primary key), without
    signals; ``obj`` comes back saved, its defaults and ``auto_now_add`` times set."""
    connection = connections[using]
    statement = _insert_statement(obj, using)
    meta = obj._meta
    with connection.cursor() as cursor:
        cursor.execute(statement.sql, statement.params)
        pk = cursor.fetchone()[0] if _returns(connection) else \
            connection.ops.last_insert_id(cursor, meta.db_table, meta.pk.column)
    return _saved(obj, pk, using)


def _saved(obj: Model, pk: Any, using: str) -> Model:
    obj.pk = pk
    obj._state.adding, obj._state.db = False, using
    return obj


def _returns(connection: Any) -> bool:
    return connection.features.can_return_columns_from_insert


def _insert_statement(obj: Model, using: str) -> Statement:
    connection = connections[using]
    meta = obj._meta
    fields = [f for f in meta.local_concrete_fields
              if f is not meta.auto_field and not f.generated]
    key = ("insert", type(obj), using)
    sql = _compiled.get(key)
    if sql is None:  # first: the compiler's pre_save would set auto_now_add times again
        query = InsertQuery(type(obj))
        query.insert_values(fields, [obj])
        compiler = query.get_compiler(using)
        compiler.returning_fields = [meta.pk] if _returns(connection) else None
        [(sql, django_params)] = compiler.as_sql()
        _check(len(django_params), len(fields), type(obj), "INSERT")
        _compiled[key] = sql
    return Statement(sql, tuple(f.get_db_prep_save(f.pre_save(obj, True), connection=connection)
                                for f in fields))


@dataclass(frozen=True)
class Statement:
    """A compiled UPDATE and this call's values, not run yet (``compile_update``): to run
    on its own (``run``) or after a fenced UPDATE in the same statement
    (``update_where_then_insert``'s ``then``)."""

    sql: str
    params: tuple[Any, ...]


def update(key: Hashable, params: Sequence[Any],
           build: Callable[[], tuple[QuerySet, dict[str, Any]]], using: str = "default") -> int:
    """``queryset.update(**values)`` for ``(queryset, values) = build()``, compiled once per
    ``key``; the number of rows changed (see ``compile_update``)."""
    return run(compile_update(key, params, build, using), using)


def compile_update(key: Hashable, params: Sequence[Any],
                   build: Callable[[], tuple[QuerySet, dict[str, Any]]],
                   using: str = "default") -> Statement:
    """The UPDATE ``queryset.update(**values)`` for ``(queryset, values) = build()`` would
    run, compiled once per ``key``, with this call's values.

    ``params`` are this call's values in the compiled statement's order, as the database
    takes them (``db_value``). ``build`` runs only on the first call for ``key``: with the
    same values, so its parameters must equal ``params`` — the check that the order is
    right."""
    sql = _compiled.get((key, using))
    if sql is None:
        queryset, values = build()
        query = queryset.query.chain(UpdateQuery)
        query.add_update_values(values)
        sql, django_params = query.get_compiler(using).as_sql()
        if len(django_params) != len(params) or not all(
                _same(a, b) for a, b in zip(django_params, params, strict=True)):
            raise TypeError(f"UPDATE {key!r}: the compiled statement takes {django_params!r}, "
                            f"the caller gave {list(params)!r}")
        _compiled[key, using] = sql
    return Statement(sql, tuple(params))


def run(statement: Statement, using: str = "default") -> int:
    """Run a compiled UPDATE; the number of rows changed."""
    with connections[using].cursor() as cursor:
        cursor.execute(statement.sql, statement.params)
        return cursor.rowcount


def db_value(model: type[Model], name: str, value: Any, using: str = "default") -> Any:
    """``value`` as the database takes it for a lookup on ``model.name`` (a date is a string
    on SQLite, for one): what the ORM's compiler would pass."""
    return model._meta.get_field(name).get_db_prep_value(value, connections[using],
                                                         prepared=False)


def _same(orm: Any, ours: Any) -> bool:
    # the ORM wraps some literals (psycopg's Int4 for Value(1)); they equal the plain value
    return orm == ours and (isinstance(orm, type(ours)) or isinstance(ours, type(orm)))


def _check(expected: int, got: int, model: type[Model], what: str) -> None:
    # a value the compiler wrote as SQL of its own (a field's placeholder) has no parameter
    if expected != got:
        raise TypeError(f"{what} of {model.__name__}: {got} values for {expected} "
                        "parameters; write it through the ORM")
