"""Value normalisation shared by the cross-engine runners (DuckDB, Spark)."""
import datetime as dt


def norm(v):
    if isinstance(v, dt.datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=dt.timezone.utc)
        return v.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(v, dt.date):
        return v.strftime("%Y-%m-%d")
    if isinstance(v, bool) or v is None or isinstance(v, (int, str)):
        return v
    if isinstance(v, float):
        return round(v, 6)
    try:  # Decimal
        return round(float(v), 6)
    except (TypeError, ValueError):
        return str(v)
