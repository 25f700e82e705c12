-- 4. session-trend: per local day × role, the sessions (distinct session keys with an
-- event that day) and events. No zero rows. From `session_facts`.
SELECT
    "day" AS "date",
    role,
    COUNT(DISTINCT session_key) AS sessions,
    SUM(n) AS events
FROM session_facts
WHERE in_range
GROUP BY "day", role
ORDER BY "date", role NULLS LAST
