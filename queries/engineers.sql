-- 15. engineers: one row per engineer (a null engineer, e.g. denied AssumeRole calls,
-- is a row of its own). Counted per (engineer, role, session, IP) first, so the
-- distinct counts and lists work on a few thousand rows, not every event.
WITH s AS (
    SELECT
        engineer, role, session_key, source_ip,
        COUNT(*) AS n,
        SUM(CASE WHEN is_error THEN 1 ELSE 0 END) AS errors,
        SUM(CASE WHEN business THEN 0 ELSE 1 END) AS after_hours,
        MIN(event_time) AS lo,
        MAX(event_time) AS hi
    FROM events
    WHERE in_range AND is_ce
    GROUP BY engineer, role, session_key, source_ip
)
SELECT
    engineer,
    STRING_AGG(DISTINCT role, ',' ORDER BY role) AS roles,
    COUNT(DISTINCT session_key) AS sessions,
    SUM(n) AS events,
    SUM(errors) AS errors,
    SUM(after_hours) AS after_hours,
    COUNT(DISTINCT source_ip) AS source_ip_count,
    MIN(lo) AS first_seen,
    MAX(hi) AS last_seen
FROM s
GROUP BY engineer
ORDER BY events DESC, engineer NULLS LAST
