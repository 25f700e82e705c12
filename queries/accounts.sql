-- 17. accounts: CE use per client account. Counted per (account, region, role,
-- session) first, so the distinct counts and lists work on a few thousand rows.
WITH s AS (
    SELECT
        account, aws_region, role, session_key,
        COUNT(*) AS n,
        SUM(CASE WHEN is_error THEN 1 ELSE 0 END) AS errors,
        MIN(event_time) AS lo,
        MAX(event_time) AS hi
    FROM events
    WHERE in_range AND is_ce
    GROUP BY account, aws_region, role, session_key
)
SELECT
    account,
    COUNT(DISTINCT aws_region) AS region_count,
    STRING_AGG(DISTINCT role, ',' ORDER BY role) AS roles,
    COUNT(DISTINCT session_key) AS sessions,
    SUM(n) AS events,
    SUM(errors) AS errors,
    MIN(lo) AS first_seen,
    MAX(hi) AS last_seen
FROM s
GROUP BY account
ORDER BY events DESC, account NULLS LAST
