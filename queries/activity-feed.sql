-- 5. activity-feed: every CE event in range, oldest first.
SELECT
    event_time,
    account,
    aws_region AS region,
    role,
    engineer,
    event_source,
    event_name,
    resource,
    source_ip,
    error_code,
    event_id
FROM events
WHERE in_range AND is_ce
ORDER BY event_time, event_id
