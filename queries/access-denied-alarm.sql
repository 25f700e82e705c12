-- 2. access-denied-alarm: UTC 5-minute periods with at least {{denied_threshold}} denied
-- CE events; adjacent alarm periods form one episode. top_action is the most frequent
-- event_name of the episode (ties: the smallest).
WITH alarm AS (
    SELECT period_idx
    FROM events
    WHERE in_range AND is_ce AND is_denied
    GROUP BY period_idx
    HAVING COUNT(*) >= {{denied_threshold}}
),
islands AS (
    SELECT period_idx, period_idx - ROW_NUMBER() OVER (ORDER BY period_idx) AS episode
    FROM alarm
),
denied AS (
    SELECT i.episode, e.period, e.period_end, e.period_idx, e.role, e.event_name
    FROM events AS e
    JOIN islands AS i ON e.period_idx = i.period_idx
    WHERE e.in_range AND e.is_ce AND e.is_denied
),
action_counts AS (
    SELECT episode, event_name, COUNT(*) AS n
    FROM denied
    GROUP BY episode, event_name
),
busiest AS (
    SELECT episode, MAX(n) AS n
    FROM action_counts
    GROUP BY episode
),
top_action AS (
    SELECT a.episode, MIN(a.event_name) AS top_action
    FROM action_counts AS a
    JOIN busiest AS b ON a.episode = b.episode AND a.n = b.n
    GROUP BY a.episode
)
SELECT
    MIN(d.period) AS "start",
    MAX(d.period_end) AS "end",
    COUNT(DISTINCT d.period_idx) AS periods,
    COUNT(*) AS denied,
    STRING_AGG(DISTINCT d.role, ',' ORDER BY d.role) AS roles,
    MIN(t.top_action) AS top_action
FROM denied AS d
JOIN top_action AS t ON d.episode = t.episode
GROUP BY d.episode
ORDER BY "start"
