"""Account security (issue 10 §3): login throttling and lockout, the password policy, password
changes, user management with four eyes on admin, expiring and revocable API tokens, sessions
that end on logout, safe `next` redirects and the security headers."""
import datetime as dt
import re

import pytest

from accounts.models import AdminGrant, ApiToken, User, UserRole
from accounts.operations import AccountError, create_token, create_user, reset_password
from accounts.passwords import policy_problem
from accounts.throttle import limiter
from accounts.views import safe_next
from app import create_app
from audit.models import AuditEvent
from extensions import db
from tests.conftest import PASSWORD, ROOT, T0, FreshContextClient, login
from tests.test_browser import (  # noqa: F401  (fixtures)
    browser_login, live_server, open_page, require_chromium, screenshot_on_failure)
from workflows import clock

EN = {"Accept-Language": "en"}
NEW_PASSWORD = "a-much-longer-passphrase"


def events(action):
    return AuditEvent.query.filter_by(action=action).order_by(AuditEvent.id).all()


def logged_in(client):
    """True when the client's session is a logged-in one (the inbox answers, no redirect)."""
    return client.get("/inbox").status_code == 200


def post_login(client, username, password, **kwargs):
    return client.post("/login", data={"username": username, "password": password},
                       headers=EN, **kwargs)


def make_admin(username):
    """A second administrator, set up directly (code that sets up data may; the CLI and the
    web pages grant admin only with four eyes)."""
    return create_user(username, PASSWORD, ["post_loan_officer", "admin"])


# ---------------------------------------------------------------- 1. lockout and throttling

def test_thirty_wrong_passwords_then_the_right_one_does_not_log_in(app, users):
    client = app.test_client()
    for _ in range(30):
        response = post_login(client, "am", "wrong-password!")
        assert response.status_code == 200
    response = post_login(client, "am", PASSWORD)
    assert response.status_code == 200  # the form again, no redirect
    assert "locked for 15 minutes" in response.get_data(as_text=True)
    assert not logged_in(client)
    user = User.query.filter_by(username="am").one()
    assert user.is_locked() and user.locked_until is not None
    locked = events("auth.locked")
    assert len(locked) == 1  # the fifth failure locks; attempts while locked don't re-lock
    assert locked[0].data["username"] == "am" and locked[0].data["minutes"] == 15
    refused = [e for e in events("login.failed") if e.data.get("reason") == "locked"]
    assert len(refused) == 26  # failures 6…30 and the right password, refused while locked
    assert not events("login")
    # Another account is not affected, and the lock ends by itself after 15 minutes.
    assert post_login(client, "plo", PASSWORD).status_code == 302
    other = app.test_client()
    clock.set_now(T0 + dt.timedelta(minutes=16))
    assert post_login(other, "am", PASSWORD).status_code == 302
    assert logged_in(other)
    assert User.query.filter_by(username="am").one().failed_logins == 0


def test_failures_below_the_limit_are_forgotten_after_a_success(app, users):
    client = app.test_client()
    for _ in range(4):
        post_login(client, "am", "wrong-password!")
    assert post_login(client, "am", PASSWORD).status_code == 302
    for _ in range(4):
        post_login(app.test_client(), "am", "wrong-password!")
    assert post_login(app.test_client(), "am", PASSWORD).status_code == 302
    assert not events("auth.locked")


def test_an_administrator_unlocks_and_a_password_reset_unlocks(app, users):
    for _ in range(5):
        post_login(app.test_client(), "am", "wrong-password!")
    assert User.query.filter_by(username="am").one().is_locked()
    admin = app.test_client()
    login(admin, "admin")
    am = User.query.filter_by(username="am").one()
    assert "locked until" in admin.get("/admin/users", headers=EN).get_data(as_text=True)
    assert admin.post(f"/admin/users/{am.id}/unlock").status_code == 302
    assert not User.query.filter_by(username="am").one().is_locked()
    assert events("user.unlocked")[0].actor_id == users["admin"].id
    for _ in range(5):
        post_login(app.test_client(), "am", "wrong-password!")
    assert User.query.filter_by(username="am").one().is_locked()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "reset-password", "am", "--password", NEW_PASSWORD])
    assert result.exit_code == 0, result.output
    assert post_login(app.test_client(), "am", NEW_PASSWORD).status_code == 302


@pytest.fixture(scope="module")
def limited_app(app):
    """A second app on the same database with Flask-Limiter on and small limits; the suite's
    app runs without it (RATELIMIT_ENABLED False)."""
    keep = ("TESTING", "SECRET_KEY", "WTF_CSRF_ENABLED", "PASSWORD_HASH_METHOD",
            "SQLALCHEMY_DATABASE_URI", "AUDIT_KEY", "AUDIT_ANCHOR_FILE")
    config = {k: app.config[k] for k in keep if k in app.config}
    config.update(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="memory://",
                  LOGIN_LIMIT_PER_ACCOUNT="3 per 15 minutes",
                  LOGIN_LIMIT_PER_ADDRESS="6 per 15 minutes",
                  LOGIN_LOCK_AFTER=100)  # the database lock out of the way
    limited = create_app(config)
    limited.test_client_class = FreshContextClient
    return limited


@pytest.fixture
def throttle(limited_app):
    limiter.reset()
    yield limited_app
    limiter.reset()


def test_flask_limiter_throttles_failed_logins_per_account_and_per_address(throttle, users):
    client = throttle.test_client()
    for _ in range(3):
        assert post_login(client, "am", "wrong-password!").status_code == 200
    # The account's limit is reached: even the right password waits, with a clear message.
    refused = post_login(client, "am", PASSWORD)
    assert refused.status_code == 429 and 0 < int(refused.headers["Retry-After"]) <= 900
    assert "Too many failed logins" in refused.get_data(as_text=True)
    assert not logged_in(client)
    # Successful logins are not counted; another account from the same address still works.
    assert post_login(client, "plo", PASSWORD).status_code == 302
    # Three more failures, on names that don't even exist, reach the address's limit of 6.
    for name in ("nobody1", "nobody2", "nobody3"):
        assert post_login(throttle.test_client(), name, "wrong-password!").status_code == 200
    blocked = post_login(throttle.test_client(), "plo2", PASSWORD)
    assert blocked.status_code == 429
    # Another address is not throttled (the per-address key is the client address).
    elsewhere = throttle.test_client()
    response = elsewhere.post("/login", data={"username": "plo2", "password": PASSWORD},
                              environ_base={"REMOTE_ADDR": "10.0.0.7"})
    assert response.status_code == 302
    # Audited once per throttled key and window, not once per refused request.
    post_login(client, "am", PASSWORD)
    throttled = events("auth.throttled")
    assert len(throttled) == 2
    assert [e.data.get("username") or e.data.get("address") for e in throttled] == [
        "am", "127.0.0.1"]
    # GET /login is never limited.
    assert client.get("/login").status_code == 200


def test_the_suites_app_is_not_throttled(app, users):
    client = app.test_client()
    for _ in range(40):
        post_login(client, "nobody", "wrong-password!")
    assert post_login(client, "plo", PASSWORD).status_code == 302


# ---------------------------------------------------------------- 2. password policy

@pytest.mark.parametrize("password, username, code", [
    ("12345678", "wang", "password_too_short"),
    ("short", "wang", "password_too_short"),
    ("1234567890", "wang", "password_common"),
    ("QwertyUIOP", "wang", "password_common"),
    ("password123", "wang", "password_common"),
    ("aaaaaaaaaaaaaa", "wang", "password_common"),
    ("wang-is-my-name", "wang", "password_has_username"),
    ("my WANG passphrase", "wang", "password_has_username"),
])
def test_weak_passwords_are_refused(app, password, username, code):
    assert policy_problem(password, username)[0] == code
    with pytest.raises(AccountError) as refused:
        create_user(username, password, ["collector"])
    assert refused.value.code == code
    assert not User.query.filter_by(username=username).first()


def test_the_passwords_of_the_demo_and_the_tests_pass(app):
    assert policy_problem("daihou-demo", "account_manager") is None
    assert policy_problem(PASSWORD, "admin") is None
    assert policy_problem("bench-password", "admin") is None
    # A two-letter user name is not looked for inside the password.
    assert policy_problem("I am a long passphrase", "am") is None
    common = (ROOT / "accounts" / "common_passwords.txt").read_text().splitlines()
    assert len([line for line in common if line and not line.startswith("#")]) >= 300


def test_policy_applies_on_change_and_reset_in_the_web_and_the_cli(app, users):
    client = app.test_client()
    login(client, "am")
    response = client.post("/account/password", headers=EN, data={
        "current_password": PASSWORD, "new_password": "1234567890", "confirm": "1234567890"})
    assert response.status_code == 400
    assert "too common" in response.get_data(as_text=True)
    admin = app.test_client()
    login(admin, "admin")
    response = admin.post(f"/admin/users/{users['am'].id}/password", headers=EN,
                          data={"new_password": "12345678", "confirm": "12345678"})
    assert response.status_code == 400
    assert "at least 10 characters" in response.get_data(as_text=True)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "create", "liu", "--role", "collector",
                                 "--password", "liu-password1"])
    assert result.exit_code != 0 and "user name" in result.output
    result = runner.invoke(args=["users", "reset-password", "am", "--password", "qwertyuiop"])
    assert result.exit_code != 0 and "too common" in result.output
    assert User.query.filter_by(username="am").one().check_password(PASSWORD)


# ---------------------------------------------------------------- 3. own password, management

def test_users_change_their_own_password(app, users):
    client, other = app.test_client(), app.test_client()
    login(client, "am")
    login(other, "am")
    page = client.get("/account", headers=EN).get_data(as_text=True)
    assert "Change my password" in page and "current_password" in page
    wrong = client.post("/account/password", headers=EN, data={
        "current_password": "not-my-password", "new_password": NEW_PASSWORD,
        "confirm": NEW_PASSWORD})
    assert wrong.status_code == 400 and "current password is wrong" in wrong.get_data(
        as_text=True)
    assert events("password.change_failed")
    done = client.post("/account/password", data={
        "current_password": PASSWORD, "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert done.status_code == 302
    assert logged_in(client)  # this session goes on…
    assert not logged_in(other)  # …every other one has ended
    assert events("password.changed")[0].actor_id == users["am"].id
    assert post_login(app.test_client(), "am", PASSWORD).status_code == 200
    assert post_login(app.test_client(), "am", NEW_PASSWORD).status_code == 302


def test_administrators_manage_users_in_the_web(app, users):
    admin = app.test_client()
    login(admin, "admin")
    users["plo"].display_name = "Zhang Wei"
    db.session.commit()
    listing = admin.get("/admin/users", headers=EN).get_data(as_text=True)
    assert "Zhang Wei" in listing and "Post-loan officer" in listing
    assert 'href="/admin/users"' in admin.get("/admin/problems").get_data(as_text=True)
    # Create.
    created = admin.post("/admin/users/new", data={
        "username": "zhao", "display_name": "Zhao Min", "roles": ["collector"],
        "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert created.status_code == 302
    zhao = User.query.filter_by(username="zhao").one()
    assert zhao.roles == {"collector"} and zhao.display_name == "Zhao Min"
    weak = admin.post("/admin/users/new", headers=EN, data={
        "username": "qian", "roles": ["collector"], "new_password": "12345678",
        "confirm": "12345678"})
    assert weak.status_code == 400 and not User.query.filter_by(username="qian").first()
    # Edit roles.
    assert admin.post(f"/admin/users/{zhao.id}/edit", data={
        "display_name": "Zhao Min", "roles": ["collector", "legal"]}).status_code == 302
    assert User.query.filter_by(username="zhao").one().roles == {"collector", "legal"}
    # Deactivate: the user's session ends and they cannot log in again; reactivate.
    zhao_web = app.test_client()
    assert post_login(zhao_web, "zhao", NEW_PASSWORD).status_code == 302
    assert admin.post(f"/admin/users/{zhao.id}/deactivate").status_code == 302
    assert not logged_in(zhao_web)
    assert post_login(app.test_client(), "zhao", NEW_PASSWORD).status_code == 200
    assert admin.post(f"/admin/users/{zhao.id}/activate").status_code == 302
    assert post_login(app.test_client(), "zhao", NEW_PASSWORD).status_code == 302
    # Reset the password: every session of the user ends.
    zhao_web = app.test_client()
    post_login(zhao_web, "zhao", NEW_PASSWORD)
    assert admin.post(f"/admin/users/{zhao.id}/password", data={
        "new_password": "another-passphrase", "confirm": "another-passphrase"}).status_code == 302
    assert not logged_in(zhao_web)
    assert post_login(app.test_client(), "zhao", "another-passphrase").status_code == 302
    # Every change is audited, with the administrator as actor.
    admin_id = users["admin"].id
    for action in ("user.created", "user.roles_changed", "user.deactivated", "user.activated",
                   "password.reset"):
        found = [e for e in events(action) if e.data.get("username") == "zhao"]
        assert found and all(e.actor_id == admin_id for e in found), action
    assert events("user.roles_changed")[-1].data == {"username": "zhao", "added": ["legal"],
                                                     "removed": []}


def test_only_administrators_reach_user_management(app, users):
    client = app.test_client()
    login(client, "compliance")
    assert client.get("/admin/users").status_code == 403
    assert client.post(f"/admin/users/{users['am'].id}/deactivate").status_code == 403
    assert User.query.filter_by(username="am").one().active
    anonymous = app.test_client()
    assert anonymous.get("/admin/users").status_code == 302


def test_the_last_administrator_cannot_be_deactivated_or_demoted(app, users):
    admin = app.test_client()
    login(admin, "admin")
    me = users["admin"]
    admin.post(f"/admin/users/{me.id}/deactivate")
    admin.post(f"/admin/users/{me.id}/edit", data={"display_name": "x", "roles": ["legal"]})
    me = User.query.filter_by(username="admin").one()
    assert me.active and "admin" in me.roles


def test_granting_admin_needs_a_second_administrator_in_the_web(app, users):
    admin2 = make_admin("admin2")
    first, second = app.test_client(), app.test_client()
    login(first, "admin")
    login(second, "admin2")
    plo = users["plo"]
    first.post(f"/admin/users/{plo.id}/edit", data={
        "display_name": "plo", "roles": ["post_loan_officer", "admin"]})
    assert User.query.filter_by(username="plo").one().roles == {"post_loan_officer"}
    grant = AdminGrant.query.filter_by(user_id=plo.id).one()
    assert grant.status == "pending" and grant.requested_by_id == users["admin"].id
    assert "awaiting approval" in first.get("/admin/users", headers=EN).get_data(as_text=True)
    # The one who asked cannot approve.
    refused = first.post(f"/admin/users/{plo.id}/admin-grant/{grant.id}/approve",
                         headers=EN, follow_redirects=True)
    assert "Four eyes" in refused.get_data(as_text=True)
    assert "admin" not in User.query.filter_by(username="plo").one().roles
    # A second administrator can.
    assert second.post(f"/admin/users/{plo.id}/admin-grant/{grant.id}/approve"
                       ).status_code == 302
    assert "admin" in User.query.filter_by(username="plo").one().roles
    approved = events("user.admin_approved")[0]
    assert approved.actor_id == admin2.id
    assert approved.data["requested_by"] == "admin" and approved.data["username"] == "plo"
    # Creating a user with the admin role also waits for approval.
    first.post("/admin/users/new", data={"username": "sun", "roles": ["admin", "legal"],
                                         "new_password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    sun = User.query.filter_by(username="sun").one()
    assert sun.roles == {"legal"}
    assert AdminGrant.query.filter_by(user_id=sun.id, status="pending").one()


def test_users_cli(app, users):
    runner = app.test_cli_runner()

    def run(*args):
        return runner.invoke(args=list(args))

    assert run("users", "create", "zhou", "--role", "collector", "--password",
               NEW_PASSWORD, "--name", "Zhou Li").exit_code == 0
    assert run("users", "roles", "zhou", "--role", "collector", "--role", "legal"
               ).exit_code == 0
    assert User.query.filter_by(username="zhou").one().roles == {"collector", "legal"}
    listing = run("users", "list").output
    assert re.search(r"^zhou\tZhou Li\tcollector,legal\tactive$", listing, re.M)
    assert run("users", "deactivate", "zhou").exit_code == 0
    assert "zhou\tZhou Li\tcollector,legal\tinactive" in run("users", "list").output
    assert run("users", "activate", "zhou").exit_code == 0
    assert run("users", "reset-password", "zhou", "--password", "a-fresh-passphrase"
               ).exit_code == 0
    assert User.query.filter_by(username="zhou").one().check_password("a-fresh-passphrase")
    # Admin: never through create or roles once an administrator exists…
    assert "four eyes" in run("users", "create", "wu", "--role", "admin", "--password",
                              NEW_PASSWORD).output
    assert "four eyes" in run("users", "roles", "zhou", "--role", "admin").output
    # …but requested by one administrator and approved by another.
    assert run("users", "grant-admin", "zhou", "--by", "admin").exit_code == 0
    same = run("users", "approve-admin", "zhou", "--by", "admin")
    assert same.exit_code != 0 and "second administrator" in same.output
    assert run("users", "approve-admin", "zhou", "--by", "am").exit_code != 0  # not an admin
    make_admin("admin2")
    assert run("users", "approve-admin", "zhou", "--by", "admin2").exit_code == 0
    assert "admin" in User.query.filter_by(username="zhou").one().roles
    assert [e.action for e in AuditEvent.query.order_by(AuditEvent.id)
            if e.data.get("username") == "zhou"] == [
        "user.created", "user.roles_changed", "user.deactivated", "user.activated",
        "password.reset", "user.admin_requested", "user.admin_approved"]


def test_the_first_administrator_is_created_on_an_empty_database(app):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["users", "create", "root", "--role", "admin", "--password",
                                NEW_PASSWORD])
    assert first.exit_code == 0, first.output
    second = runner.invoke(args=["users", "create", "root2", "--role", "admin", "--password",
                                 NEW_PASSWORD])
    assert second.exit_code != 0 and "four eyes" in second.output
    assert not User.query.filter_by(username="root2").first()


# ---------------------------------------------------------------- 4. API tokens

def test_tokens_are_named_listed_expiring_and_revocable_in_the_cli(app, users):
    runner = app.test_cli_runner()
    created = runner.invoke(args=["tokens", "create", "am", "--name", "core banking"])
    token = created.output.strip().splitlines()[-1]
    row = ApiToken.query.one()
    assert row.name == "core banking"
    assert row.expires_at.replace(tzinfo=dt.timezone.utc) == T0 + dt.timedelta(days=90)
    short = runner.invoke(args=["tokens", "create", "am", "--name", "script", "--days", "7"])
    short_token = short.output.strip().splitlines()[-1]
    assert runner.invoke(args=["tokens", "create", "am", "--days", "5000"]).exit_code != 0
    listing = runner.invoke(args=["tokens", "list", "am"]).output
    assert "core banking" in listing and "expires 2026-05-31" in listing and "active" in listing
    assert "am" in runner.invoke(args=["tokens", "list"]).output
    api = app.test_client()

    def status(value):
        return api.get("/api/v1/tasks?scope=mine",
                       headers={"Authorization": f"Bearer {value}"}).status_code

    assert status(token) == 200 and status(short_token) == 200
    clock.set_now(T0 + dt.timedelta(days=8))
    refused = api.get("/api/v1/tasks", headers={"Authorization": f"Bearer {short_token}"})
    assert refused.status_code == 401 and refused.is_json and "error" in refused.get_json()
    assert "expired" in runner.invoke(args=["tokens", "list", "am"]).output
    assert status(token) == 200
    revoked = runner.invoke(args=["tokens", "revoke", str(row.id)])
    assert revoked.exit_code == 0, revoked.output
    assert status(token) == 401
    assert "revoked" in runner.invoke(args=["tokens", "list", "am"]).output
    assert [e.data["token_id"] for e in events("token.revoked")] == [row.id]
    clock.set_now(T0 + dt.timedelta(days=91))
    assert status(token) == 401


def test_tokens_on_the_account_page_and_for_administrators(app, users):
    client = app.test_client()
    login(client, "am")
    created = client.post("/account/tokens", data={"name": "my script", "days": "30"})
    assert created.status_code == 200 and created.headers["Cache-Control"] == "no-store"
    token = re.search(r"<code>(dh_[^<]+)</code>", created.get_data(as_text=True)).group(1)
    row = ApiToken.query.filter_by(name="my script").one()
    assert row.expires_at.replace(tzinfo=dt.timezone.utc) == T0 + dt.timedelta(days=30)
    page = client.get("/account").get_data(as_text=True)
    assert "my script" in page and token not in page  # shown once only
    headers = {"Authorization": f"Bearer {token}"}
    assert app.test_client().get("/api/v1/tasks", headers=headers).status_code == 200
    # Another user cannot revoke it; its owner can.
    other = app.test_client()
    login(other, "plo")
    assert other.post(f"/account/tokens/{row.id}/revoke").status_code == 404
    assert client.post(f"/account/tokens/{row.id}/revoke").status_code == 302
    assert app.test_client().get("/api/v1/tasks", headers=headers).status_code == 401
    # Administrators see every token and revoke any.
    second = create_token("plo", "integration")
    plo_row = ApiToken.query.filter_by(name="integration").one()
    admin = app.test_client()
    login(admin, "admin")
    assert "integration" in admin.get("/admin/users/tokens").get_data(as_text=True)
    assert "integration" in admin.get(f"/admin/users/{users['plo'].id}").get_data(as_text=True)
    assert admin.post(f"/admin/users/{users['plo'].id}/tokens/{plo_row.id}/revoke"
                      ).status_code == 302
    assert app.test_client().get("/api/v1/tasks", headers={
        "Authorization": f"Bearer {second}"}).status_code == 401
    assert events("token.revoked")[-1].actor_id == users["admin"].id


def test_a_deactivated_users_tokens_are_refused(app, users, token_for):
    headers = token_for("am")
    assert app.test_client().get("/api/v1/tasks", headers=headers).status_code == 200
    app.test_cli_runner().invoke(args=["users", "deactivate", "am"])
    assert app.test_client().get("/api/v1/tasks", headers=headers).status_code == 401


# ---------------------------------------------------------------- 5. sessions

def _copy_session(source, target):
    cookie = source.get_cookie("session")
    assert cookie is not None
    target.set_cookie("session", cookie.value)


def test_a_cookie_copied_before_logout_no_longer_works(app, users):
    browser, thief = app.test_client(), app.test_client()
    login(browser, "am")
    _copy_session(browser, thief)
    assert logged_in(thief)
    assert browser.post("/logout").status_code == 302
    assert not logged_in(browser)
    assert not logged_in(thief)  # the server-side check refuses the old session version
    assert events("logout")[0].actor_id == users["am"].id


def test_deactivation_and_a_reset_end_every_session(app, users):
    phone, laptop = app.test_client(), app.test_client()
    login(phone, "am")
    login(laptop, "am")
    reset_password(users["am"], NEW_PASSWORD, actor=users["admin"])
    assert not logged_in(phone) and not logged_in(laptop)
    login(phone, "am", NEW_PASSWORD)
    assert logged_in(phone)
    app.test_cli_runner().invoke(args=["users", "deactivate", "am"])
    assert not logged_in(phone)


def test_a_session_without_a_version_is_refused(app, users):
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = str(users["am"].id)  # the format before session versions
        session["_fresh"] = True
    assert not logged_in(client)


# ---------------------------------------------------------------- 6. next

@pytest.mark.parametrize("target", [
    "/%09/evil.com", "/\t/evil.com", "//evil.com", "/\\evil.com", "\\\\evil.com",
    "https://evil.com", "http:/evil.com", "javascript:alert(1)", "evil.com", "/%2F/evil.com",
    "/%5Cevil.com", " //evil.com", "/\n/evil.com", "",
])
def test_unsafe_next_targets_are_refused(target):
    assert safe_next(target) is None


def test_safe_next_targets_are_kept():
    for target in ("/inbox", "/cases/L-001?tab=history#x", "/cases?q=a%20b"):
        assert safe_next(target) == target


def test_login_with_an_off_site_next_redirects_home(app, users):
    for query in ("/%09/evil.com", "//evil.com", "https://evil.com/", "/%5Cevil.com"):
        response = app.test_client().post(f"/login?next={query}",
                                          data={"username": "am", "password": PASSWORD})
        assert response.status_code == 302
        assert response.headers["Location"] == "/", query  # the role's home page
    response = app.test_client().post("/login?next=/cases", data={"username": "am",
                                                                  "password": PASSWORD})
    assert response.headers["Location"] == "/cases"
    language = app.test_client().post("/language/en", data={"next": "/%09/evil.com"})
    assert language.headers["Location"] == "/inbox"


# ---------------------------------------------------------------- 7. headers and cookies

def test_security_headers_on_every_response(app, users, token_for):
    client = app.test_client()
    login(client, "admin")
    responses = [client.get("/login"), client.get("/inbox"), client.get("/admin/users"),
                 client.get("/no-such-page"), client.get("/static/app.css"),
                 app.test_client().get("/api/v1/tasks"),
                 app.test_client().get("/api/v1/tasks", headers=token_for("am"))]
    for response in responses:
        csp = response.headers["Content-Security-Policy"]
        for directive in ("default-src 'self'", "script-src 'self'", "style-src 'self'",
                          "img-src 'self' data:", "frame-ancestors 'none'",
                          "form-action 'self'", "base-uri 'none'"):
            assert directive in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"
    assert "Strict-Transport-Security" not in responses[0].headers


def test_templates_have_no_inline_script_handler_or_style():
    offenders = []
    for path in (ROOT / "templates").rglob("*.html"):
        html = path.read_text(encoding="utf-8")
        for tag in re.findall(r"<script\b[^>]*>", html):
            if "src=" not in tag and 'type="application/json"' not in tag:
                offenders.append(f"{path.name}: {tag}")
        offenders += [f"{path.name}: {m}" for m in re.findall(r"\son[a-z]+\s*=", html)]
        offenders += [f"{path.name}: {m}" for m in re.findall(r"\sstyle\s*=", html)]
        offenders += [f"{path.name}: <style>" for _ in re.findall(r"<style\b", html)]
    assert offenders == []


def test_secure_cookies_when_configured_for_https(app, users, monkeypatch):
    monkeypatch.setenv("HTTPS", "1")
    keep = ("TESTING", "SECRET_KEY", "WTF_CSRF_ENABLED", "PASSWORD_HASH_METHOD",
            "SQLALCHEMY_DATABASE_URI", "AUDIT_KEY", "AUDIT_ANCHOR_FILE", "RATELIMIT_ENABLED")
    https_app = create_app({k: app.config[k] for k in keep if k in app.config})
    https_app.test_client_class = FreshContextClient
    assert https_app.config["SESSION_COOKIE_SECURE"] is True
    assert https_app.config["REMEMBER_COOKIE_SECURE"] is True
    response = https_app.test_client().post(
        "/login", base_url="https://localhost", data={"username": "am", "password": PASSWORD})
    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    monkeypatch.delenv("HTTPS")
    monkeypatch.setenv("SESSION_COOKIE_SECURE", "1")
    assert create_app({k: app.config[k] for k in keep if k in app.config}
                      ).config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_SECURE"] is False


def test_pages_run_under_the_csp_in_a_browser(capsys, deployed, new_loan, users, open_page,
                                              tmp_path):
    """Chromium reports every CSP violation (a `securitypolicyviolation` event and a console
    error): none on the login, inbox, case (with its bpmn-js diagram), dossier, studio editor
    and heatmap, account and user-management pages."""
    require_chromium(capsys)
    loan_no = new_loan().loan_no
    create_user("owner", PASSWORD, ["process_owner", "compliance"])
    page = open_page()
    problems = []
    page.add_init_script("""document.addEventListener('securitypolicyviolation', e =>
        console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI));""")
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))

    def visit(path, ready=None):
        response = page.goto(path)
        assert response.status < 400, path
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        page.wait_for_load_state("load")
        if ready:
            page.wait_for_selector(ready)

    def in_the_browser():
        browser_login(page, "owner")
        visit("/inbox")
        visit(f"/cases/{loan_no}")
        page.click("#diagram-tab")
        page.click("#process-diagrams details summary")
        page.wait_for_selector("#process-diagrams .dh-canvas svg")
        visit(f"/cases/{loan_no}/dossier", "[data-print]")
        visit("/studio/processes/handover/edit", "#studio.is-ready")
        visit("/studio/processes/handover/versions/1/heatmap", ".djs-container svg")
        visit("/account", "#token-form")
        page.click("header .dropdown-toggle")  # the user menu holds "Log out"
        page.click("form[action='/logout'] button")
        browser_login(page, "admin")
        visit("/admin/users", "#users")
        visit(f"/admin/users/{users['am'].id}", "#user-form")
        visit("/admin/users/new", "#user-form")
        # favicon.ico is not served (404): not a CSP matter.
        real = [p for p in problems if "favicon" not in p and "404" not in p]
        assert real == [], real

    screenshot_on_failure(page, tmp_path / "failure.png", in_the_browser)
