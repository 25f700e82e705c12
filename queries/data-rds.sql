-- 8. data-rds: RDS use by the data role ({{data_role}}), per database.
SELECT
    db,
    COUNT(*) AS events,
    STRING_AGG(DISTINCT event_name, ',' ORDER BY event_name) AS actions,
    STRING_AGG(DISTINCT engineer, ',' ORDER BY engineer) AS engineers,
    MIN(event_time) AS first_seen,
    MAX(event_time) AS last_seen
FROM events
WHERE in_range AND is_ce AND role = '{{data_role}}' AND db IS NOT NULL
GROUP BY db
ORDER BY events DESC, db
