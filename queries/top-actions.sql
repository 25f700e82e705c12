-- 14. top-actions: every role × source × action, busiest first within each role.
SELECT
    role,
    event_source,
    event_name,
    COUNT(*) AS events,
    SUM(CASE WHEN is_error THEN 1 ELSE 0 END) AS errors,
    COUNT(DISTINCT session_key) AS sessions
FROM events
WHERE in_range AND is_ce
GROUP BY role, event_source, event_name
ORDER BY role NULLS LAST, events DESC, event_source, event_name
