-- 15. engineers: one row per engineer (a null engineer, e.g. denied AssumeRole calls,
-- is a row of its own).
SELECT
    engineer,
    STRING_AGG(DISTINCT role, ',' ORDER BY role) AS roles,
    COUNT(DISTINCT session_key) AS sessions,
    COUNT(*) AS events,
    SUM(CASE WHEN is_error THEN 1 ELSE 0 END) AS errors,
    SUM(CASE WHEN business THEN 0 ELSE 1 END) AS after_hours,
    COUNT(DISTINCT source_ip) AS source_ip_count,
    MIN(event_time) AS first_seen,
    MAX(event_time) AS last_seen
FROM events
WHERE in_range AND is_ce
GROUP BY engineer
ORDER BY events DESC, engineer NULLS LAST
