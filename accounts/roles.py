"""Role keys of DOMAIN.md §2. BPMN lanes are named after them."""
from flask_babel import lazy_gettext as _l

ROLES = {
    "account_manager": _l("Account manager"),
    "back_office": _l("Back office"),
    "post_loan_officer": _l("Post-loan officer"),
    "collector": _l("Collector"),
    "risk_manager": _l("Risk manager"),
    "dept_head": _l("Department head"),
    "general_manager": _l("General manager"),
    "legal": _l("Legal"),
    "compliance": _l("Compliance"),
    "process_owner": _l("Process owner"),
    "admin": _l("Administrator"),
}

# Roles that may see every case; an account manager sees the loans they manage.
CASE_READERS = frozenset(ROLES) - {"account_manager", "process_owner"}
# Roles that may register loans (core banking integration uses an admin token).
LOAN_REGISTRARS = frozenset({"admin", "post_loan_officer", "account_manager"})
# Roles that may add contacts, log contacts and upload documents on any case they may see;
# an account manager may on the loans they manage. Compliance and process owners never.
CASE_RECORDERS = frozenset({"post_loan_officer", "back_office", "collector", "risk_manager",
                            "dept_head", "legal", "admin"})
