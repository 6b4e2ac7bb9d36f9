"""The time spine: one row per day, read from the configured table or generated in SQL.

A configured `time_spine: {table, column}` is read as it is. Without one, the days are generated
between fixed bounds (1900-01-01 to 2100-12-31) as `UNNEST(GENERATE_DATE_ARRAY(...))`, which sqlglot
writes as each dialect's series (DuckDB's generate_series, PostgreSQL's generate_series, Spark's and
Trino's SEQUENCE, BigQuery's GENERATE_DATE_ARRAY, Snowflake's ARRAY_GENERATE_RANGE); every use
filters the days to the range it needs. So a read-only warehouse can have rolling, to-date and
gap-filled metrics. ClickHouse refuses it (render/dialects.py): configure a table there.
"""

from __future__ import annotations

from sqlglot import exp

from ..catalog import Catalog
from .build import table

ALIAS = "_canon_spine"
COLUMN = "date_day"
FIRST_DAY, LAST_DAY = "1900-01-01", "2100-12-31"


def spine_source(catalog: Catalog) -> tuple[exp.Expression, exp.Column]:
    """The spine as a FROM item aliased `_canon_spine`, and its day column."""
    spine = catalog.settings.time_spine
    if spine is not None:
        return table(spine.table, ALIAS), exp.column(spine.column, table=ALIAS)
    step = exp.Interval(this=exp.Literal.string("1"), unit=exp.var("DAY"))
    days = exp.Unnest(expressions=[exp.GenerateDateArray(start=_date(FIRST_DAY), end=_date(LAST_DAY), step=step)],
                      alias=exp.TableAlias(this=exp.to_identifier("_canon_days"), columns=[exp.to_identifier("d")]))
    generated = exp.select(exp.alias_(exp.cast(exp.column("d", table="_canon_days"), exp.DataType.Type.DATE), COLUMN)) \
        .from_(days)
    return generated.subquery(ALIAS), exp.column(COLUMN, table=ALIAS)


def _date(text: str) -> exp.Expression:
    return exp.cast(exp.Literal.string(text), exp.DataType.Type.DATE)
