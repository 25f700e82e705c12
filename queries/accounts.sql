-- 17. accounts: CE use per client account.
SELECT
    account,
    COUNT(DISTINCT aws_region) AS region_count,
    STRING_AGG(DISTINCT role, ',' ORDER BY role) AS roles,
    COUNT(DISTINCT session_key) AS sessions,
    COUNT(*) AS events,
    SUM(CASE WHEN is_error THEN 1 ELSE 0 END) AS errors,
    MIN(event_time) AS first_seen,
    MAX(event_time) AS last_seen
FROM events
WHERE in_range AND is_ce
GROUP BY account
ORDER BY events DESC, account NULLS LAST
