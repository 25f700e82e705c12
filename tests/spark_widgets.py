"""Runs the widgets on Apache Spark (local mode) over a cetrail lake, for the
cross-engine test.

usage: python spark_widgets.py SCRIPT.json
SCRIPT.json: {"view": [statement, ...], "widgets": {name: sql}} as cetrail renders them
for Spark (src/query/dialect.rs). Prints {widget: {"columns": [...], "rows": [...]}}
with values normalised as tests/duckdb_widgets.py does.
"""
import json
import os
import pathlib
import sys

os.environ["TZ"] = "UTC"  # PySpark converts timestamps with the process's zone
import time

time.tzset()

from pyspark.sql import SparkSession  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from engine_norm import norm  # noqa: E402

script = json.loads(pathlib.Path(sys.argv[1]).read_text())
spark = (
    SparkSession.builder.master("local[2]")
    .appName("cetrail-widgets")
    .config("spark.sql.session.timeZone", "UTC")
    .config("spark.sql.ansi.enabled", "false")
    .config("spark.sql.shuffle.partitions", "4")
    .config("spark.ui.enabled", "false")
    .config("spark.driver.host", "127.0.0.1")
    .config("spark.driver.bindAddress", "127.0.0.1")
    .getOrCreate()
)
spark.sparkContext.setLogLevel("ERROR")
for stmt in script["view"]:
    spark.sql(stmt)
out = {}
for name, sql in script["widgets"].items():
    df = spark.sql(sql)
    out[name] = {"columns": df.columns, "rows": [[norm(v) for v in r] for r in df.collect()]}
spark.stop()
json.dump(out, sys.stdout)
