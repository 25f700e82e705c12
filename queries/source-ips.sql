-- 9. source-ips: where CE calls come from (from `session_facts`).
SELECT
    source_ip,
    SUM(n) AS events,
    COUNT(DISTINCT session_key) AS sessions,
    STRING_AGG(DISTINCT role, ',' ORDER BY role) AS roles,
    STRING_AGG(DISTINCT engineer, ',' ORDER BY engineer) AS engineers,
    MIN(lo) AS first_seen,
    MAX(hi) AS last_seen
FROM session_facts
WHERE in_range
GROUP BY source_ip
ORDER BY events DESC, source_ip NULLS LAST
