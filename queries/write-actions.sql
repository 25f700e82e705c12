-- 16. write-actions: CE write events (readOnly = false) per role × source × action.
SELECT
    role,
    event_source,
    event_name,
    COUNT(*) AS events,
    STRING_AGG(DISTINCT engineer, ',' ORDER BY engineer) AS engineers,
    MIN(event_time) AS first_seen,
    MAX(event_time) AS last_seen
FROM events
WHERE in_range AND is_ce AND is_write
GROUP BY role, event_source, event_name
ORDER BY events DESC, role NULLS LAST, event_source, event_name
