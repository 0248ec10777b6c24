"""Race figures for the ledger (issue 9): simultaneous HTTP requests against one loan.

    python -m bench.ledger_races

Uses DATABASE_URL when it is set (an empty database, e.g. the one scripts/with-postgres.sh
creates), else a fresh SQLite file in a temporary directory. Migrates, deploys bpmn/, serves
the app on 127.0.0.1 (werkzeug, threaded) and fires each scenario's requests at once (one
thread each, released by a barrier), then prints per scenario
"requests N, accepted N, sum posted X, expected X". tests/test_ledger_races.py asserts the
same scenarios and takes serve(), fire() and the request bodies from here.
"""
import http.client
import json
import os
import sys
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from decimal import ROUND_DOWN, Decimal
from pathlib import Path

from werkzeug.serving import WSGIRequestHandler, make_server

ROOT = Path(__file__).resolve().parent.parent
PAID_AT = "2026-03-02T10:00:00+08:00"  # the tests' and this bench's frozen clock: T0


class _Quiet(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):  # one line per request would drown the figures
        pass


@contextmanager
def serve(app):
    """The app on a real socket at 127.0.0.1; yields (host, port)."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield "127.0.0.1", server.server_port
    finally:
        server.shutdown()
        thread.join(timeout=30)
        server.server_close()


def fire(address, path, bodies, headers):
    """POST every body at the same moment; returns [(status, json)] in the bodies' order."""
    barrier = threading.Barrier(len(bodies))

    def post(body):
        conn = http.client.HTTPConnection(*address, timeout=120)
        try:
            conn.connect()
            payload = json.dumps(body)
            barrier.wait()
            conn.request("POST", path, payload,
                         {"Content-Type": "application/json", **headers})
            response = conn.getresponse()
            raw = response.read()
            try:
                data = json.loads(raw)
            except ValueError:
                data = {"raw": raw.decode(errors="replace")[:500]}
            return response.status, data
        finally:
            conn.close()

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(post, bodies))


def distinct_repayments(loan_no, n=20):
    """n small repayments with distinct references (all fit under any test loan's balance)."""
    return [{"amount": str(Decimal("1000.00") + Decimal("0.37") * i), "paid_at": PAID_AT,
             "external_ref": f"{loan_no}-R{i:02d}"} for i in range(n)]


def duplicate_repayments(loan_no, n=20):
    return [{"amount": "500.00", "paid_at": PAID_AT, "external_ref": f"{loan_no}-DUP"}
            for _ in range(n)]


def excess_repayments(loan_no, balance, n=10):
    """n repayments of 30% of the balance each: only three fit."""
    amount = (Decimal(balance) * Decimal("0.3")).quantize(Decimal("0.01"), ROUND_DOWN)
    return [{"amount": str(amount), "paid_at": PAID_AT, "external_ref": f"{loan_no}-X{i:02d}"}
            for i in range(n)]


def accepted_sum(bodies, results):
    return sum((Decimal(b["amount"]) for b, (status, _) in zip(bodies, results)
                if status == 201), start=Decimal("0.00"))


def main():
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = f"sqlite:///{Path(tempfile.mkdtemp()) / 'races.db'}"
    sys.path.insert(0, str(ROOT))
    from flask_migrate import upgrade
    from sqlalchemy import func, select

    from accounts.operations import create_token, create_user
    from app import create_app
    from cases.operations import register_loan
    from extensions import db
    from ledger.models import Repayment
    from ledger.verify import verify
    from tests.conftest import T0
    from tests.test_extension import REQUEST
    from tests.test_servicing import hand_over, three_installment_payload
    from workflows import clock
    from workflows.definitions import deploy_paths
    from workflows.models import ProcessInstance

    app = create_app({"PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000"})
    database = app.config["SQLALCHEMY_DATABASE_URI"].split(":")[0]
    with app.app_context():
        upgrade()
        deploy_paths(sorted((ROOT / "bpmn").glob("*.bpmn")), ROOT / "bpmn" / "forms")
        clock.set_now(T0)
        users = {name: create_user(name, "bench-password", roles) for name, roles in {
            "admin": ["admin"], "am": ["account_manager"], "plo": ["post_loan_officer"]}.items()}
        admin = {"Authorization": f"Bearer {create_token('admin', 'bench')}"}
        am = {"Authorization": f"Bearer {create_token('am', 'bench')}"}

        def loan(loan_no):
            made = hand_over(register_loan(three_installment_payload(loan_no), users["admin"]),
                             users)
            db.session.commit()
            return made

        def posted(loan_id):
            db.session.rollback()
            return db.session.scalar(select(func.count(Repayment.id)).where(
                Repayment.loan_id == loan_id)), sum(
                (r.amount for r in Repayment.query.filter_by(loan_id=loan_id)),
                start=Decimal("0.00"))

        print(f"ledger races on {database}")
        with serve(app) as address:
            for name, loan_no, make in (("distinct refs", "RACE-A", distinct_repayments),
                                        ("same ref", "RACE-B", duplicate_repayments),
                                        ("over the balance", "RACE-C", None)):
                case = loan(loan_no)
                bodies = make(case.loan_no) if make else \
                    excess_repayments(case.loan_no, case.outstanding)
                results = fire(address, f"/api/v1/loans/{case.loan_no}/repayments", bodies,
                               admin)
                rows, total = posted(case.id)
                statuses = sorted({s for s, _ in results})
                print(f"  {name}: requests {len(bodies)}, accepted "
                      f"{sum(s == 201 for s, _ in results)}, sum posted {total}, expected "
                      f"{accepted_sum(bodies, results)} (rows {rows}, statuses {statuses})")
            case = loan("RACE-EXT")
            results = fire(address, f"/api/v1/loans/{case.loan_no}/extensions",
                           [REQUEST] * 10, am)
            db.session.rollback()
            running = ProcessInstance.query.filter_by(case_id=case.id, business_key="extension",
                                                      status="running").count()
            print(f"  extensions: requests 10, accepted {sum(s == 201 for s, _ in results)}, "
                  f"running {running}, expected 1 (statuses {sorted({s for s, _ in results})})")
        breaks = verify()
        print(f"  verify: {len(breaks)} break(s)" + "".join(f"\n    {b}" for b in breaks))
        clock.set_now(None)


if __name__ == "__main__":
    main()
