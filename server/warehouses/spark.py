"""Spark (local mode) as a warehouse: `spark-local:<folder of parquet files>`.

`SparkWarehouse(url)` starts (or reuses) a local-mode SparkSession on this machine's JVM and registers
each `<table>.parquet` in the folder as a temporary view named `<table>`, so Canon's Spark SQL runs on
the real engine. It is meant for tests and small data: the session runs in the driver process, with the
web UI off, few shuffle partitions and the session time zone fixed to UTC (stored times are naive UTC, so
the JVM's zone must never shift them).

Each query runs in a job group of its own (`setJobGroup(..., interruptOnCancel=True)`): a cancel or the
timeout calls `cancelJobGroup`, which kills its running tasks. Rows come through `toLocalIterator()`,
one partition at a time (a job per partition, run as the batches are read), so the driver holds one
partition and one batch, not the whole result; the job group reaches those jobs because Spark's
serving thread inherits the caller's local properties.

Needs `pyspark` (pip install 'canon-semantic[test]') and a Java runtime (17 or newer).
"""

from __future__ import annotations

import uuid

from canon.compiler.errors import QueryCancelledError, WarehouseError, WarehouseUnavailableError

from ..parquet_export import tables_at_url
from .base import DEFAULT_BATCH_ROWS, QueryTicket, RunningQuery, Stream, StreamingWarehouse, group_batches

URL_PREFIX = "spark-local:"

# the settings of a small, deterministic, single-machine session
DEFAULT_CONF = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.driver.memory": "1g",
    "spark.sql.session.timeZone": "UTC",
    # small data: planning and code generation cost more than they save
    "spark.sql.adaptive.enabled": "false",
    "spark.sql.codegen.wholeStage": "false",
    "spark.driver.extraJavaOptions": "-Duser.timezone=UTC",
    "spark.executor.extraJavaOptions": "-Duser.timezone=UTC",
}


def is_spark_url(url: str) -> bool:
    return url.startswith(URL_PREFIX)


class SparkWarehouse(StreamingWarehouse):
    dialect = "spark"

    def __init__(self, url: str, *, master: str = "local[2]", conf: dict[str, str] | None = None):
        tables = tables_at_url(url, URL_PREFIX, "Spark")
        try:
            from py4j.protocol import Py4JError
            from pyspark.errors import PySparkException
            from pyspark.sql import SparkSession
        except ImportError:
            raise WarehouseError("Spark support needs pyspark",
                                 hint="pip install 'pyspark>=4.0,<5' (and a Java 17+ runtime)") from None
        self.url = url
        builder = SparkSession.builder.master(master).appName("canon")
        for key, value in {**DEFAULT_CONF, **(conf or {})}.items():
            builder = builder.config(key, value)
        try:
            self._spark = builder.getOrCreate()
        except (PySparkException, Py4JError, OSError) as error:  # no JVM, bad JAVA_HOME, ...
            raise WarehouseUnavailableError(f"cannot start a local Spark session: {_first_line(error)}",
                                 hint="install a Java 17+ runtime and set JAVA_HOME") from None
        # a reused session keeps its settings: the time zone is the one that matters for correctness
        self._spark.conf.set("spark.sql.session.timeZone", "UTC")
        self._spark.sparkContext.setLogLevel("ERROR")
        for name, path in tables.items():
            self._spark.read.parquet(str(path)).createOrReplaceTempView(name)
        self.tables = sorted(tables)

    def stream(self, sql: str, *, timeout_s: float | None = None, ticket: QueryTicket | None = None,
               batch_rows: int = DEFAULT_BATCH_ROWS) -> Stream:
        run = RunningQuery(ticket, timeout_s, batch_rows)
        context = self._spark.sparkContext
        group = f"canon-{uuid.uuid4().hex}"

        def start():
            # job groups are per thread: set for this one, and inherited by the thread serving the rows
            context.setJobGroup(group, "canon query", interruptOnCancel=True)
            try:
                run.on_cancel(lambda: context.cancelJobGroup(group), repeat_s=0.05)
                frame = self._spark.sql(sql)  # parsed and analysed here; no job runs yet
                rows = frame.toLocalIterator()
            finally:
                context.setLocalProperty("spark.jobGroup.id", None)
            run.defer(lambda: _stop(context, group, rows))
            return list(frame.columns), group_batches((tuple(row) for row in rows), run.batch_rows)

        return run.stream(start, _translate)

    def close(self) -> None:
        # the temp views belong to this warehouse; the session (and its JVM) may be shared, so stays up
        # until `stop()` or the end of the process
        for name in self.tables:
            self._spark.catalog.dropTempView(name)

    def stop(self) -> None:
        """Close, then stop the SparkSession (and its JVM gateway)."""
        self.close()
        self._spark.stop()


def _stop(context, group: str, rows) -> None:
    """The query ended: close the row iterator (Spark stops serving) and cancel what still runs."""
    try:
        rows.close()
    finally:
        context.cancelJobGroup(group)


def _translate(error: Exception) -> Exception | None:
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    if not isinstance(error, (PySparkException, Py4JError)):
        return None
    message = _first_line(error)
    if "SPARK_JOB_CANCELLED" in message or "cancelled part of cancelled job group" in message:
        return QueryCancelledError(f"Spark cancelled the query: {message}")
    return WarehouseError(f"the warehouse rejected the query: {message}",  # analysis, parse and runtime errors
                          hint="check that the warehouse has the tables the catalog names")


def _first_line(error: BaseException) -> str:
    java = getattr(error, "java_exception", None)  # a Py4JJavaError: the Java exception says what happened
    text = str(java if java is not None else error).strip()
    return text.splitlines()[0] if text else type(error).__name__
