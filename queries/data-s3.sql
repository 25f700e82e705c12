-- 7. data-s3: S3 use by the data role ({{data_role}}), per bucket.
SELECT
    bucket,
    COUNT(*) AS events,
    SUM(CASE WHEN read_only THEN 1 ELSE 0 END) AS reads,
    SUM(CASE WHEN is_write THEN 1 ELSE 0 END) AS writes,
    COUNT(DISTINCT object_key) AS object_count,
    STRING_AGG(DISTINCT engineer, ',' ORDER BY engineer) AS engineers,
    MIN(event_time) AS first_seen,
    MAX(event_time) AS last_seen
FROM events
WHERE in_range AND is_ce AND role = '{{data_role}}' AND bucket IS NOT NULL
GROUP BY bucket
ORDER BY events DESC, bucket
