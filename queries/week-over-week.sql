-- 11. week-over-week: per local ISO week whose Monday 00:00 is in range × role with
-- events that week or the week before. Values count whole weeks, even beyond the
-- range; a role active only the week before gets zeros (-100 %). Counts are cast to
-- BIGINT so that differences are signed on every engine. Counted from `session_facts`.
WITH weekly AS (
    SELECT
        week, next_week, week_in_range, next_week_in_range, role,
        CAST(COUNT(DISTINCT session_key) AS BIGINT) AS sessions,
        CAST(SUM(n) AS BIGINT) AS events,
        CAST(SUM(errors) AS BIGINT) AS errors,
        CAST(COUNT(DISTINCT engineer) AS BIGINT) AS engineer_count
    FROM session_facts
    GROUP BY week, next_week, week_in_range, next_week_in_range, role
),
wanted AS (
    SELECT week, role FROM weekly WHERE week_in_range
    UNION
    SELECT next_week AS week, role FROM weekly WHERE next_week_in_range
)
SELECT
    w.week,
    w.role,
    COALESCE(c.sessions, 0) AS sessions,
    COALESCE(c.events, 0) AS events,
    COALESCE(c.errors, 0) AS errors,
    COALESCE(c.engineer_count, 0) AS engineer_count,
    COALESCE(p.sessions, 0) AS prev_sessions,
    COALESCE(p.events, 0) AS prev_events,
    COALESCE(p.errors, 0) AS prev_errors,
    COALESCE(p.engineer_count, 0) AS prev_engineer_count,
    CASE
        WHEN COALESCE(p.events, 0) = 0 THEN NULL
        ELSE ROUND(100.0 * (COALESCE(c.events, 0) - p.events) / p.events, 2)
    END AS events_change_pct
FROM wanted AS w
LEFT JOIN weekly AS c ON c.week = w.week AND c.role = w.role
LEFT JOIN weekly AS p ON p.next_week = w.week AND p.role = w.role
ORDER BY w.week, w.role NULLS LAST
