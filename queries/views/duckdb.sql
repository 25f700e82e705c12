-- The `events` view for DuckDB: the same rows and columns as cetrail's polars view
-- (src/query/view.rs): CE events (assume, activity) of the lake, one row per event_id
-- (a trail's copy first, then the copy from the smallest source object), with the
-- derived columns.
-- Placeholders (in double braces): lake from to tz business_start business_end
-- (minutes of the local day) business_days (ISO weekdays, 1 = Monday).
-- Run `SET TimeZone = 'UTC';` first.
CREATE OR REPLACE VIEW events AS
WITH raw AS (
    SELECT * EXCLUDE (month)
    FROM read_parquet('{{lake}}/events/*/*.parquet', hive_partitioning = true, union_by_name = true)
    WHERE kind IN ('assume', 'activity')
),
dedup AS (
    SELECT * FROM raw
    QUALIFY ROW_NUMBER() OVER (
        PARTITION BY event_id
        ORDER BY coalesce(source_kind, 'trail') <> 'trail', source_object
    ) = 1
),
local AS (
    SELECT *,
        timezone('{{tz}}', event_time) AS local_time,
        date_trunc('week', timezone('{{tz}}', event_time)) AS local_week
    FROM dedup
)
SELECT * EXCLUDE (local_time, local_week),
    kind IN ('assume', 'activity') AS is_ce,
    event_time >= TIMESTAMPTZ '{{from}}' AND event_time < TIMESTAMPTZ '{{to}}' AS in_range,
    CAST(local_time AS DATE) AS "day",
    CAST(local_week AS DATE) AS week,
    CAST(local_week + INTERVAL 7 DAY AS DATE) AS next_week,
    timezone('{{tz}}', local_week) >= TIMESTAMPTZ '{{from}}'
        AND timezone('{{tz}}', local_week) < TIMESTAMPTZ '{{to}}' AS week_in_range,
    timezone('{{tz}}', local_week + INTERVAL 7 DAY) >= TIMESTAMPTZ '{{from}}'
        AND timezone('{{tz}}', local_week + INTERVAL 7 DAY) < TIMESTAMPTZ '{{to}}' AS next_week_in_range,
    CAST(hour(local_time) AS INTEGER) AS local_hour,
    CAST(isodow(local_time) AS INTEGER) AS weekday,
    isodow(local_time) IN ({{business_days}})
        AND hour(local_time) * 60 + minute(local_time) >= {{business_start}}
        AND hour(local_time) * 60 + minute(local_time) < {{business_end}} AS business,
    to_timestamp((epoch_us(event_time) // 3600000000) * 3600) AS "hour",
    to_timestamp((epoch_us(event_time) // 300000000) * 300) AS period,
    to_timestamp((epoch_us(event_time) // 300000000) * 300 + 300) AS period_end,
    epoch_us(event_time) // 3600000000 AS hour_idx,
    epoch_us(event_time) // 300000000 AS period_idx,
    event_source || ':' || event_name AS action,
    COALESCE(
        target_instance,
        CASE WHEN bucket IS NOT NULL AND object_key IS NOT NULL THEN bucket || '/' || object_key END,
        bucket,
        db,
        resources[1].arn
    ) AS resource
FROM local;
