-- 12. anomalies (SPEC §6). cetrail computes this widget in Rust (src/query/anomalies.rs);
-- this is the same definition in SQL, for DuckDB (and the cross-engine test).
--   volume: per role and UTC hour in range with events, the baseline is the role's
--   non-zero hourly counts in the {{volume_window_hours}} hours before (none before the
--   lake's first event hour); with at least {{volume_min_hours}} such hours,
--   expected = median, scale = max(1.4826 * MAD, 1), a row when the score
--   (x - expected) / scale >= {{volume_score}} and x - expected >= {{volume_min_excess}}.
--   new_source_ip / new_action / new_engineer: values seen in range but not in the
--   role's events of the {{lookback_days}} days before the range (roles with no such
--   history give no rows).
WITH hourly AS (
    SELECT role, hour_idx, MIN(hour) AS hour, COUNT(*) AS x
    FROM events
    WHERE is_ce
    GROUP BY role, hour_idx
),
candidates AS (
    SELECT * FROM hourly
    WHERE hour >= TIMESTAMPTZ '{{from}}' AND hour < TIMESTAMPTZ '{{to}}'
),
baseline AS (
    SELECT c.role, c.hour_idx, c.hour, c.x, b.x AS bx
    FROM candidates AS c
    JOIN hourly AS b
      ON b.role = c.role
     AND b.hour_idx >= c.hour_idx - {{volume_window_hours}}
     AND b.hour_idx < c.hour_idx
     AND b.hour_idx >= {{lake_start_hour}}
),
stats AS (
    SELECT role, hour_idx, hour, x, MEDIAN(bx) AS expected
    FROM baseline
    GROUP BY role, hour_idx, hour, x
    HAVING COUNT(*) >= {{volume_min_hours}}
),
spread AS (
    SELECT s.role, s.hour, s.x, s.expected, MEDIAN(ABS(b.bx - s.expected)) AS mad
    FROM stats AS s
    JOIN baseline AS b ON b.role = s.role AND b.hour_idx = s.hour_idx
    GROUP BY s.role, s.hour, s.x, s.expected
),
volume AS (
    SELECT 'volume' AS kind, role, hour AS "time", CAST(NULL AS VARCHAR) AS value,
        x AS observed, CAST(expected AS DOUBLE) AS expected,
        (x - expected) / GREATEST(1.4826 * mad, 1.0) AS score
    FROM spread
),
history AS (
    SELECT * FROM events
    WHERE is_ce
      AND event_time >= GREATEST(TIMESTAMPTZ '{{from}}' - INTERVAL '{{lookback_days}} days', TIMESTAMPTZ '{{lake_start}}')
      AND event_time < TIMESTAMPTZ '{{from}}'
),
in_range AS (
    SELECT * FROM events WHERE is_ce AND in_range
),
seen AS (
    SELECT 'new_source_ip' AS kind, role, source_ip AS value, MIN(event_time) AS "time", COUNT(*) AS observed
    FROM in_range WHERE source_ip IS NOT NULL GROUP BY role, source_ip
    UNION ALL
    SELECT 'new_action', role, action, MIN(event_time), COUNT(*)
    FROM in_range WHERE action IS NOT NULL GROUP BY role, action
    UNION ALL
    SELECT 'new_engineer', role, engineer, MIN(event_time), COUNT(*)
    FROM in_range WHERE engineer IS NOT NULL GROUP BY role, engineer
),
first_seen AS (
    SELECT s.kind, s.role, s."time", s.value, s.observed, 0.0 AS expected, CAST(NULL AS DOUBLE) AS score
    FROM seen AS s
    WHERE s.role IN (SELECT role FROM history)
      AND NOT EXISTS (
        SELECT 1 FROM history AS h
        WHERE h.role = s.role
          AND s.value = CASE s.kind
              WHEN 'new_source_ip' THEN h.source_ip
              WHEN 'new_action' THEN h.action
              ELSE h.engineer END
      )
)
SELECT kind, role, "time", value, observed, expected, ROUND(score, 2) AS score
FROM volume
WHERE score >= {{volume_score}} AND observed - expected >= {{volume_min_excess}}
UNION ALL
SELECT kind, role, "time", value, observed, expected, score FROM first_seen
ORDER BY "time", kind, role, value NULLS LAST
