"""`make test-scaleout` asks this first: do PostgreSQL (DATABASE_URL) and Redis (REDIS_URL) answer?

Exit status 0 when both answer; 1, with the reason on stdout, when either does not, so that the
Makefile skips that run and says why instead of failing on a machine without the servers.
"""

import os
import sys

import dj_database_url
import psycopg
import redis


def problem() -> str:
    database_url, redis_url = os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", "")
    db = dj_database_url.parse(database_url) if database_url else {}
    if db.get("ENGINE") != "django.db.backends.postgresql":
        return f"DATABASE_URL is not a PostgreSQL URL ({database_url or 'unset'})"
    if not redis_url.startswith(("redis://", "rediss://", "unix://")):
        return f"REDIS_URL is not a Redis URL ({redis_url or 'unset'})"
    # The maintenance database: pytest-django creates test_<name> from there, so <name> need not exist.
    params = {"host": db["HOST"], "port": db["PORT"] or 5432, "user": db["USER"], "password": db["PASSWORD"]}
    try:
        with psycopg.connect(dbname="postgres", connect_timeout=3, **params) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as error:
        return f"PostgreSQL at {db['HOST']}:{params['port']} does not answer: {str(error).strip().splitlines()[0]}"
    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=3, socket_timeout=3).ping()
    except redis.RedisError as error:
        return f"Redis at {redis_url} does not answer: {error}"
    return ""


if __name__ == "__main__":
    reason = problem()
    if reason:
        print(reason)
    sys.exit(1 if reason else 0)
