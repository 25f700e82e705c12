-- 1. admin-alarm: episodes of CE-Admin use. A UTC 5-minute period with at least
-- {{admin_threshold}} CE-Admin events raises the alarm; adjacent alarm periods form one
-- episode, whose values count only the events inside its alarm periods.
WITH alarm AS (
    SELECT period_idx
    FROM events
    WHERE in_range AND is_ce AND role = '{{admin_role}}'
    GROUP BY period_idx
    HAVING COUNT(*) >= {{admin_threshold}}
),
islands AS (
    SELECT period_idx, period_idx - ROW_NUMBER() OVER (ORDER BY period_idx) AS episode
    FROM alarm
)
SELECT
    MIN(e.period) AS "start",
    MAX(e.period_end) AS "end",
    COUNT(DISTINCT e.period_idx) AS periods,
    COUNT(*) AS events,
    COUNT(DISTINCT e.session_key) AS sessions,
    STRING_AGG(DISTINCT e.engineer, ',' ORDER BY e.engineer) AS engineers
FROM events AS e
JOIN islands AS i ON e.period_idx = i.period_idx
WHERE e.in_range AND e.is_ce AND e.role = '{{admin_role}}'
GROUP BY i.episode
ORDER BY "start"
