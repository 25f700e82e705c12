-- 9. source-ips: where CE calls come from.
SELECT
    source_ip,
    COUNT(*) AS events,
    COUNT(DISTINCT session_key) AS sessions,
    STRING_AGG(DISTINCT role, ',' ORDER BY role) AS roles,
    STRING_AGG(DISTINCT engineer, ',' ORDER BY engineer) AS engineers,
    MIN(event_time) AS first_seen,
    MAX(event_time) AS last_seen
FROM events
WHERE in_range AND is_ce
GROUP BY source_ip
ORDER BY events DESC, source_ip NULLS LAST
