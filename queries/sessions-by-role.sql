-- 3. sessions-by-role: one row per CE role with events in range (from `session_facts`).
SELECT
    role,
    COUNT(DISTINCT session_key) AS sessions,
    COUNT(DISTINCT engineer) AS engineer_count,
    SUM(n) AS events,
    SUM(errors) AS errors,
    MIN(lo) AS first_seen,
    MAX(hi) AS last_seen
FROM session_facts
WHERE in_range
GROUP BY role
ORDER BY role NULLS LAST
