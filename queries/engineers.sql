-- 15. engineers: one row per engineer (a null engineer, e.g. denied AssumeRole calls,
-- is a row of its own), from `session_facts`.
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
FROM session_facts
WHERE in_range
GROUP BY engineer
ORDER BY events DESC, engineer NULLS LAST
