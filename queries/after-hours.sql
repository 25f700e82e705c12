-- 10. after-hours: CE events outside business hours (local), per role × engineer.
SELECT
    role,
    engineer,
    COUNT(*) AS events,
    COUNT(DISTINCT session_key) AS sessions,
    MIN(event_time) AS first_seen,
    MAX(event_time) AS last_seen
FROM events
WHERE in_range AND is_ce AND NOT business
GROUP BY role, engineer
ORDER BY events DESC, role NULLS LAST, engineer NULLS LAST
