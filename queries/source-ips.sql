-- 9. source-ips: where CE calls come from. Counted per (IP, session, role, engineer)
-- first, so the distinct counts and lists work on a few thousand rows, not every event.
WITH s AS (
    SELECT
        source_ip, session_key, role, engineer,
        COUNT(*) AS n,
        MIN(event_time) AS lo,
        MAX(event_time) AS hi
    FROM events
    WHERE in_range AND is_ce
    GROUP BY source_ip, session_key, role, engineer
)
SELECT
    source_ip,
    SUM(n) AS events,
    COUNT(DISTINCT session_key) AS sessions,
    STRING_AGG(DISTINCT role, ',' ORDER BY role) AS roles,
    STRING_AGG(DISTINCT engineer, ',' ORDER BY engineer) AS engineers,
    MIN(lo) AS first_seen,
    MAX(hi) AS last_seen
FROM s
GROUP BY source_ip
ORDER BY events DESC, source_ip NULLS LAST
