-- 4. session-trend: per local day × role, the sessions (distinct session keys with an
-- event that day) and events. No zero rows.
SELECT
    day AS "date",
    role,
    COUNT(DISTINCT session_key) AS sessions,
    COUNT(*) AS events
FROM events
WHERE in_range AND is_ce
GROUP BY day, role
ORDER BY "date", role NULLS LAST
