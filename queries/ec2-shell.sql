-- 6. ec2-shell: ssm:StartSession per target instance, all CE roles. sessions = starts
-- without error, failed = with error; lists and first/last over all starts.
SELECT
    target_instance AS instance,
    SUM(CASE WHEN error_code IS NULL THEN 1 ELSE 0 END) AS sessions,
    SUM(CASE WHEN error_code IS NULL THEN 0 ELSE 1 END) AS failed,
    STRING_AGG(DISTINCT engineer, ',' ORDER BY engineer) AS engineers,
    STRING_AGG(DISTINCT role, ',' ORDER BY role) AS roles,
    MIN(event_time) AS first_start,
    MAX(event_time) AS last_start
FROM events
WHERE in_range AND is_ce
    AND event_source = 'ssm.amazonaws.com' AND event_name = 'StartSession'
    AND target_instance IS NOT NULL
GROUP BY target_instance
ORDER BY sessions DESC, instance
