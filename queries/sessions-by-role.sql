-- 3. sessions-by-role: one row per CE role with events in range.
SELECT
    role,
    COUNT(DISTINCT session_key) AS sessions,
    COUNT(DISTINCT engineer) AS engineer_count,
    COUNT(*) AS events,
    SUM(CASE WHEN is_error THEN 1 ELSE 0 END) AS errors,
    MIN(event_time) AS first_seen,
    MAX(event_time) AS last_seen
FROM events
WHERE in_range AND is_ce
GROUP BY role
ORDER BY role NULLS LAST
