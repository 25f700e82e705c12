-- The `events` view for Apache Spark SQL (3.4+): the same rows and columns as cetrail's
-- polars view (src/query/view.rs) and queries/views/duckdb.sql: CE events (assume,
-- activity) of the lake, one row per event_id (a trail's copy first, then the copy
-- from the smallest source object), with the derived columns. The widgets run on it after
-- `cetrail sql --engine spark` (or src/query/dialect.rs) translated them.
-- Placeholders (in double braces): lake (folder, s3a:// or hdfs:// URL of the lake root) from to
-- (UTC, 'YYYY-MM-DD hh:mm:ss') tz business_start business_end (minutes of the
-- local day) business_days (ISO weekdays, 1 = Monday).
-- Session settings: spark.sql.session.timeZone=UTC, spark.sql.ansi.enabled=false.
CREATE OR REPLACE TEMPORARY VIEW lake_events
USING parquet OPTIONS (path '{{lake}}/events', mergeSchema 'true');

CREATE OR REPLACE TEMPORARY VIEW events AS
WITH raw AS (
    SELECT *, CASE WHEN coalesce(source_kind, 'trail') = 'trail' THEN 0 ELSE 1 END AS copy_rank
    FROM lake_events WHERE kind IN ('assume', 'activity')
),
dedup AS (
    SELECT r.* FROM raw AS r
    WHERE NOT EXISTS (
        SELECT 1 FROM raw AS o
        WHERE o.event_id = r.event_id
            AND (o.copy_rank < r.copy_rank
                OR (o.copy_rank = r.copy_rank AND o.source_object < r.source_object))
    )
)
SELECT *,
    kind IN ('assume', 'activity') AS is_ce,
    event_time >= TIMESTAMP '{{from}}' AND event_time < TIMESTAMP '{{to}}' AS in_range,
    CAST(from_utc_timestamp(event_time, '{{tz}}') AS DATE) AS `day`,
    CAST(date_trunc('WEEK', from_utc_timestamp(event_time, '{{tz}}')) AS DATE) AS week,
    date_add(CAST(date_trunc('WEEK', from_utc_timestamp(event_time, '{{tz}}')) AS DATE), 7) AS next_week,
    to_utc_timestamp(date_trunc('WEEK', from_utc_timestamp(event_time, '{{tz}}')), '{{tz}}') >= TIMESTAMP '{{from}}'
        AND to_utc_timestamp(date_trunc('WEEK', from_utc_timestamp(event_time, '{{tz}}')), '{{tz}}') < TIMESTAMP '{{to}}'
        AS week_in_range,
    to_utc_timestamp(date_trunc('WEEK', from_utc_timestamp(event_time, '{{tz}}')) + INTERVAL 7 DAYS, '{{tz}}') >= TIMESTAMP '{{from}}'
        AND to_utc_timestamp(date_trunc('WEEK', from_utc_timestamp(event_time, '{{tz}}')) + INTERVAL 7 DAYS, '{{tz}}') < TIMESTAMP '{{to}}'
        AS next_week_in_range,
    hour(from_utc_timestamp(event_time, '{{tz}}')) AS local_hour,
    weekday(from_utc_timestamp(event_time, '{{tz}}')) + 1 AS weekday,
    weekday(from_utc_timestamp(event_time, '{{tz}}')) + 1 IN ({{business_days}})
        AND hour(from_utc_timestamp(event_time, '{{tz}}')) * 60 + minute(from_utc_timestamp(event_time, '{{tz}}')) >= {{business_start}}
        AND hour(from_utc_timestamp(event_time, '{{tz}}')) * 60 + minute(from_utc_timestamp(event_time, '{{tz}}')) < {{business_end}}
        AS business,
    timestamp_micros(div(unix_micros(event_time), 3600000000) * 3600000000) AS `hour`,
    timestamp_micros(div(unix_micros(event_time), 300000000) * 300000000) AS period,
    timestamp_micros(div(unix_micros(event_time), 300000000) * 300000000 + 300000000) AS period_end,
    div(unix_micros(event_time), 3600000000) AS hour_idx,
    div(unix_micros(event_time), 300000000) AS period_idx,
    concat(event_source, ':', event_name) AS action,
    COALESCE(
        target_instance,
        CASE WHEN bucket IS NOT NULL AND object_key IS NOT NULL THEN concat(bucket, '/', object_key) END,
        bucket,
        db,
        element_at(resources, 1).arn
    ) AS resource
FROM dedup;
