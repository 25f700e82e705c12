-- 13. denied-actions: denied CE events per role × source × action × error code.
SELECT
    role,
    event_source,
    event_name,
    error_code,
    COUNT(*) AS events,
    STRING_AGG(DISTINCT engineer, ',' ORDER BY engineer) AS engineers,
    MIN(event_time) AS first_seen,
    MAX(event_time) AS last_seen
FROM events
WHERE in_range AND is_ce AND is_denied
GROUP BY role, event_source, event_name, error_code
ORDER BY events DESC, role NULLS LAST, event_source, event_name, error_code
