-- 17. accounts: CE use per client account (from `session_facts`: one row per session,
-- day, region and IP, so the distinct counts and lists work on a few thousand rows).
SELECT
    account,
    COUNT(DISTINCT aws_region) AS region_count,
    STRING_AGG(DISTINCT role, ',' ORDER BY role) AS roles,
    COUNT(DISTINCT session_key) AS sessions,
    SUM(n) AS events,
    SUM(errors) AS errors,
    MIN(lo) AS first_seen,
    MAX(hi) AS last_seen
FROM session_facts
WHERE in_range
GROUP BY account
ORDER BY events DESC, account NULLS LAST
