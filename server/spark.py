"""Spark (local mode) as a warehouse: `spark-local:<folder of parquet files>`.

`SparkWarehouse(url)` starts (or reuses) a local-mode SparkSession on this machine's JVM and registers
each `<table>.parquet` in the folder as a temporary view named `<table>`, so Canon's Spark SQL runs on
the real engine. It is meant for tests and small data: the session runs in the driver process, with the
web UI off, few shuffle partitions and the session time zone fixed to UTC (stored times are naive UTC, so
the JVM's zone must never shift them).

Needs `pyspark` (pip install 'canon-semantic[test]') and a Java runtime (17 or newer).
"""

from __future__ import annotations


from canon.compiler.errors import WarehouseError

from .parquet_export import tables_at_url

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


class SparkWarehouse:
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
            raise WarehouseError(f"cannot start a local Spark session: {_first_line(error)}",
                                 hint="install a Java 17+ runtime and set JAVA_HOME") from None
        # a reused session keeps its settings: the time zone is the one that matters for correctness
        self._spark.conf.set("spark.sql.session.timeZone", "UTC")
        self._spark.sparkContext.setLogLevel("ERROR")
        for name, path in tables.items():
            self._spark.read.parquet(str(path)).createOrReplaceTempView(name)
        self.tables = sorted(tables)

    def execute(self, sql: str) -> tuple[list[str], list[tuple]]:
        from py4j.protocol import Py4JError
        from pyspark.errors import PySparkException

        try:
            frame = self._spark.sql(sql)
            names = list(frame.columns)
            rows = [tuple(row) for row in frame.collect()]
        except (PySparkException, Py4JError) as error:  # analysis, parse and runtime errors
            raise WarehouseError(f"the warehouse rejected the query: {_first_line(error)}",
                                 hint="check that the warehouse has the tables the catalog names") from None
        return names, rows

    def close(self) -> None:
        # the temp views belong to this warehouse; the session (and its JVM) may be shared, so stays up
        # until `stop()` or the end of the process
        for name in self.tables:
            self._spark.catalog.dropTempView(name)

    def stop(self) -> None:
        """Close, then stop the SparkSession (and its JVM gateway)."""
        self.close()
        self._spark.stop()


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
