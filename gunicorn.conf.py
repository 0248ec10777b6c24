"""Gunicorn settings for `make serve` (production). Every value comes from the environment."""
import multiprocessing
import os

bind = os.environ.get("BIND", "127.0.0.1:8000")
# Threads share a process's SQLAlchemy pool; processes scale past the GIL.
workers = int(os.environ.get("WEB_WORKERS", multiprocessing.cpu_count() * 2 + 1))
threads = int(os.environ.get("WEB_THREADS", "4"))
timeout = int(os.environ.get("WEB_TIMEOUT", "60"))
# Restart workers now and then so a slow leak can never take the service down.
max_requests = int(os.environ.get("WEB_MAX_REQUESTS", "5000"))
max_requests_jitter = max_requests // 10
accesslog = os.environ.get("ACCESS_LOG", "-")
# Behind a proxy, TRUSTED_PROXIES (app config) decides which X-Forwarded-For hops count.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
wsgi_app = "app:create_app()"


def post_worker_init(worker):
    """Say when a worker has loaded the app and takes requests: the master listens (and the
    port answers) before its workers are ready, so this line is how a deploy script (or the
    benchmarks) knows the whole server is up."""
    worker.log.info("Worker ready (pid: %s)", worker.pid)
