"""`make bench`: every row of issue 12's table, on SQLite and on PostgreSQL, with targets.

    python -m bench.run [--quick] [--only NAME[,NAME…]] [--databases sqlite,postgresql]

BENCH_SCALE=quick (or --quick) runs the small version (a few minutes); the default is the
full size (100k loans for the inbox and staging rows). Each benchmark runs in a process of its
own on a fresh database (SQLite: a temporary file; PostgreSQL: a database created and dropped
by scripts/with-postgres.sh), and prints its rounds as it goes; the summary at the end lists
every figure with its target and whether it is met. Figures only: nothing here fails because a
target is missed.
"""
import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import ROOT, read_rows, scale_arg

# In the order of the table.
BENCHES = ["completion", "throughput", "inbox", "timers", "staging", "intake"]
DATABASES = ("sqlite", "postgresql")


def run_one(name, database, scale):
    """Run bench.<name> in a new process on a new database; its rows, or None if it failed."""
    out = Path(tempfile.mkdtemp()) / "rows.json"
    code = ("import sys; from bench.common import write_rows; "
            f"from bench.{name} import run; write_rows(run({scale!r}), {str(out)!r})")
    command = [sys.executable, "-c", code]
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    if database == "postgresql":
        command = ["bash", str(ROOT / "scripts" / "with-postgres.sh")] + command
    print(f"\n== {name} on {database} ({scale}) ==", flush=True)
    result = subprocess.run(command, cwd=ROOT, env=env)
    if result.returncode or not out.exists():
        print(f"!! bench.{name} on {database} failed (exit {result.returncode})", flush=True)
        return None
    return read_rows(out)


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
    results, failed = [], []
    for name in names:
        for database in args.databases.split(","):
            rows = run_one(name, database, scale)
            if rows is None:
                failed.append(f"{name} on {database}")
            else:
                results.append((database, name, rows))
    print(f"\n== summary ({scale}; {os.cpu_count()} cores) ==")
    for database, name, rows in results:
        print(f"{name} — {'SQLite' if database == 'sqlite' else 'PostgreSQL'}")
        for row in rows:
            print(row.format())
    targets = [row for _d, _n, rows in results for row in rows if row.met is not None]
    met = sum(row.met for row in targets)
    print(f"\n{met} of {len(targets)} targets met"
          + (f"; failed to run: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
