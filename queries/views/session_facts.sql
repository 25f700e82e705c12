-- The `session_facts` view, the same in every engine (translated like the widgets):
-- the CE events of `events` counted per session and per everything the session-level
-- widgets group by (in range or not, local day and its weeks, account, region, role,
-- engineer, source IP). A session spans hours, so this is tens of thousands of rows
-- where `events` has millions: sessions-by-role, session-trend, source-ips,
-- week-over-week, engineers and accounts aggregate these rows instead of the events,
-- and every engine computes them once (cetrail materialises it on first use).
SELECT
    in_range, "day", week, next_week, week_in_range, next_week_in_range,
    account, aws_region, role, session_key, engineer, source_ip,
    COUNT(*) AS n,
    SUM(CASE WHEN is_error THEN 1 ELSE 0 END) AS errors,
    SUM(CASE WHEN business THEN 0 ELSE 1 END) AS after_hours,
    MIN(event_time) AS lo,
    MAX(event_time) AS hi
FROM events
WHERE is_ce
GROUP BY in_range, "day", week, next_week, week_in_range, next_week_in_range,
    account, aws_region, role, session_key, engineer, source_ip
