-- The `events` view for Amazon Athena (engine v3, Trino SQL) over the table that
-- `cetrail athena-ddl` creates: the same rows and columns as cetrail's polars view
-- (src/query/view.rs). The widgets run on it after `cetrail sql --engine athena`
-- translated them. Athena reads Parquet timestamps as `timestamp(3)` in UTC.
-- Placeholders (in double braces): table columns (the lake's columns) from to (UTC,
-- 'YYYY-MM-DD hh:mm:ss') tz business_start business_end business_days.
CREATE OR REPLACE VIEW events AS
WITH raw AS (
    SELECT {{columns}} FROM {{table}} WHERE kind IN ('assume', 'activity')
),
ranked AS (
    SELECT *, row_number() OVER (
        PARTITION BY event_id
        ORDER BY CASE WHEN coalesce(source_kind, 'trail') = 'trail' THEN 0 ELSE 1 END, source_object
    ) AS copy_rank
    FROM raw
),
dedup AS (
    SELECT {{columns}},
        at_timezone(with_timezone(event_time, 'UTC'), '{{tz}}') AS local_time
    FROM ranked WHERE copy_rank = 1
),
weeks AS (
    SELECT *,
        CAST(date_trunc('week', local_time) AS DATE) AS week
    FROM dedup
)
SELECT {{columns}},
    kind IN ('assume', 'activity') AS is_ce,
    event_time >= TIMESTAMP '{{from}}' AND event_time < TIMESTAMP '{{to}}' AS in_range,
    CAST(local_time AS DATE) AS "day",
    week,
    date_add('day', 7, week) AS next_week,
    with_timezone(CAST(week AS timestamp), '{{tz}}') >= with_timezone(TIMESTAMP '{{from}}', 'UTC')
        AND with_timezone(CAST(week AS timestamp), '{{tz}}') < with_timezone(TIMESTAMP '{{to}}', 'UTC')
        AS week_in_range,
    with_timezone(CAST(date_add('day', 7, week) AS timestamp), '{{tz}}') >= with_timezone(TIMESTAMP '{{from}}', 'UTC')
        AND with_timezone(CAST(date_add('day', 7, week) AS timestamp), '{{tz}}') < with_timezone(TIMESTAMP '{{to}}', 'UTC')
        AS next_week_in_range,
    hour(local_time) AS local_hour,
    day_of_week(local_time) AS weekday,
    day_of_week(local_time) IN ({{business_days}})
        AND hour(local_time) * 60 + minute(local_time) >= {{business_start}}
        AND hour(local_time) * 60 + minute(local_time) < {{business_end}} AS business,
    date_trunc('hour', event_time) AS "hour",
    date_add('minute', -(minute(event_time) % 5), date_trunc('minute', event_time)) AS period,
    date_add('minute', 5 - (minute(event_time) % 5), date_trunc('minute', event_time)) AS period_end,
    CAST(floor(to_unixtime(event_time) / 3600) AS BIGINT) AS hour_idx,
    CAST(floor(to_unixtime(event_time) / 300) AS BIGINT) AS period_idx,
    concat(event_source, ':', event_name) AS action,
    COALESCE(
        target_instance,
        CASE WHEN bucket IS NOT NULL AND object_key IS NOT NULL THEN concat(bucket, '/', object_key) END,
        bucket,
        db,
        element_at(resources, 1).arn
    ) AS resource
FROM weeks;
