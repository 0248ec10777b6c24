"""`make bench`: every row of issue 12's table, on SQLite and on PostgreSQL, with targets.

    python -m bench.run [--quick] [--only NAME[,NAME…]] [--databases sqlite,postgresql]

BENCH_SCALE=quick (or --quick) runs the small version (a few minutes); the default is the
full size (100k loans for the inbox and staging rows). Each benchmark runs in a process of its
own on a fresh database (SQLite: a temporary file; PostgreSQL: a database created and dropped
by scripts/with-postgres.sh), and prints its rounds as it goes; the summary at the end lists
every figure with its target and whether it is met. Figures only: nothing here fails because a
target is missed.

The benches measure neither the migrations nor the deploy, so each database kind is migrated
and has bpmn/ deployed once per run (a template), and every bench starts from a copy of it
(SQLite: a backup of the file; PostgreSQL: CREATE DATABASE … TEMPLATE). Without a template
(PostgreSQL unreachable when the run starts) each bench migrates and deploys its own.
"""
import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from bench.common import AUDIT_KEY, PREPARED, ROOT, read_rows, scale_arg

# In the order of the table.
BENCHES = ["completion", "throughput", "inbox", "timers", "staging", "intake"]
DATABASES = ("sqlite", "postgresql")


def bench_env():
    """The environment of every process of the run: no DATABASE_URL of the caller's, and one
    audit key, so that the events of the template and of the bench are sealed alike."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", PREPARED)}
    env.setdefault("AUDIT_KEY", AUDIT_KEY)
    return env


def _postgres():
    """A connection to the server's maintenance database, as scripts/with-postgres.sh makes."""
    import psycopg
    return psycopg.connect(host=os.environ.get("PGHOST", "127.0.0.1"),
                           port=os.environ.get("PGPORT", "5432"),
                           user=os.environ.get("PGUSER", "postgres"), dbname="postgres",
                           autocommit=True, connect_timeout=5)


def _prepare(url):
    """Migrate url and deploy bpmn/ there, in a process of its own (started, not waited for;
    its output is shown when it fails)."""
    code = "from bench.common import make_app; make_app()"
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=dict(bench_env(), DATABASE_URL=url))


def _built(database, process):
    output = process.communicate()[0]
    if process.returncode:
        print(f"(no {database} template: {output.decode(errors='replace')[-2000:]})",
              flush=True)
    return process.returncode == 0


@contextmanager
def templates(databases, workdir):
    """{database: template} (a SQLite file, a PostgreSQL database name) for those that could
    be built, built at once (nothing is measured yet); the PostgreSQL one is dropped at the
    end."""
    building, started = {}, time.perf_counter()
    if "sqlite" in databases:
        path = workdir / "template.db"
        building["sqlite"] = (path, _prepare(f"sqlite:///{path}"))
    name, created = f"daihou_bench_template_{os.getpid()}", False
    if "postgresql" in databases:
        try:
            with _postgres() as conn:
                conn.execute(f"CREATE DATABASE {name}")
            created = True
        except Exception as exc:  # noqa: BLE001 — each bench migrates its own database then
            print(f"(no PostgreSQL template: {exc})", flush=True)
        else:
            host, port = os.environ.get("PGHOST", "127.0.0.1"), os.environ.get("PGPORT", "5432")
            user = os.environ.get("PGUSER", "postgres")
            building["postgresql"] = (name, _prepare(f"postgresql://{user}@{host}:{port}/{name}"))
    made = {database: template for database, (template, process) in building.items()
            if _built(database, process)}
    print(f"(templates migrated and deployed in {time.perf_counter() - started:.1f} s: "
          f"{', '.join(made) or 'none'})", flush=True)
    try:
        yield made
    finally:
        if created:
            with _postgres() as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def settle():
    """Write out what the previous bench left in memory before the next one starts: the
    staging bench writes a 100,000-loan book, and PostgreSQL's checkpoint of it used to run
    during the intake rounds after it (API intake 193 loans/s there, 222 on its own)."""
    os.sync()
    try:
        with _postgres() as conn:
            conn.execute("CHECKPOINT")
    except Exception:  # noqa: BLE001 — no PostgreSQL here: the SQLite benches run alone
        pass


def run_one(name, database, scale, rundir, template=None):
    """Run bench.<name> in a new process on a new database (a copy of the template when there
    is one); (its rows or None if it failed, seconds)."""
    workdir = Path(tempfile.mkdtemp(dir=rundir))
    out = workdir / "rows.json"
    code = ("import sys; from bench.common import write_rows; "
            f"from bench.{name} import run; write_rows(run({scale!r}), {str(out)!r})")
    command = [sys.executable, "-c", code]
    env = bench_env()
    if database == "postgresql":
        command = ["bash", str(ROOT / "scripts" / "with-postgres.sh")] + command
        if template:
            env.update({"PGTEMPLATE": template, PREPARED: "1"})
    elif template:
        copy = workdir / "bench.db"
        with sqlite3.connect(template) as source, sqlite3.connect(copy) as target:
            source.backup(target)
        env.update({"DATABASE_URL": f"sqlite:///{copy}", PREPARED: "1"})
    print(f"\n== {name} on {database} ({scale}) ==", flush=True)
    settle()
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=env)
    seconds = time.perf_counter() - started
    print(f"({name} on {database}: {seconds:.1f} s)", flush=True)
    if result.returncode or not out.exists():
        print(f"!! bench.{name} on {database} failed (exit {result.returncode})", flush=True)
        return None, seconds
    return read_rows(out), seconds


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default=",".join(BENCHES))
    parser.add_argument("--databases", default=",".join(DATABASES))
    args = parser.parse_args(argv)
    scale = scale_arg(["--quick"] if args.quick else [])
    names = [n for n in args.only.split(",") if n]
    unknown = set(names) - set(BENCHES)
    if unknown:
        parser.error(f"unknown bench(es): {', '.join(sorted(unknown))}")
    databases = [d for d in args.databases.split(",") if d]
    if set(databases) - set(DATABASES):
        parser.error(f"databases are among: {', '.join(DATABASES)}")
    results, failed, started = [], [], time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="daihou-bench-") as rundir, \
            templates(databases, Path(rundir)) as made:
        for name in names:
            for database in databases:
                rows, seconds = run_one(name, database, scale, rundir, made.get(database))
                if rows is None:
                    failed.append(f"{name} on {database}")
                else:
                    results.append((database, name, rows, seconds))
    print(f"\n== summary ({scale}; {os.cpu_count()} cores; "
          f"{time.perf_counter() - started:.0f} s in all) ==")
    for database, name, rows, seconds in results:
        print(f"{name} — {'SQLite' if database == 'sqlite' else 'PostgreSQL'} "
              f"({seconds:.0f} s)")
        for row in rows:
            print(row.format())
    targets = [row for _d, _n, rows, _s in results for row in rows if row.met is not None]
    met = sum(row.met for row in targets)
    print(f"\n{met} of {len(targets)} targets met"
          + (f"; failed to run: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
