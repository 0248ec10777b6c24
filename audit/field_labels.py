"""Names of the fields of audit event details and of the processes, in both languages
(audit/presenting.py renders events with them)."""
from flask_babel import lazy_gettext as _l

from workflows.labels import PROCESS_LABELS as _PROCESS_LABELS

# Shown only in the technical details: internal ids and fingerprints (keys ending in "_id"
# too), and what the row already says (a task's step and its BPMN name).
HIDDEN = frozenset({"sha256", "bpmn_id", "hash", "nonce", "draft", "based_on", "business_key"})
# Hidden for these actions only: a task's BPMN name (the row shows its title).
HIDDEN_FOR = {"task.created": {"name"}, "task.completed": {"name"}, "task.claimed": {"name"},
              "task.unclaimed": {"name"}, "task.overdue": {"name"}, "timer.fired": {"name"},
              # the watch's once-only key ("12:2027-01-11"); the reason and dates say it
              "collateral.warning_raised": {"key"},
              # the category's name in both languages: the category is shown in the reader's
              "risk.signal_raised": {"category_name"}}

# Code values of the intake payload without a table elsewhere.
PARTY_KIND_LABELS = {"person": _l("Person"), "company": _l("Company"),
                     "mortgage": _l("Mortgage"), "pledge": _l("Pledge")}

# Kinds of a case's open problem (cases.models.CaseProblem).
PROBLEM_KIND_LABELS = {"calendar_year_missing": _l("Working-day calendar not entered"),
                       "ledger_invariant": _l("Ledger check failed")}

# Process names come from the BPMN of the deployed versions (workflows/labels.py).
PROCESS_LABELS = _PROCESS_LABELS

FIELD_LABELS = {
    # the loan and its parties (case.created: the intake payload)
    "loan_no": _l("Loan number"), "product": _l("Product"), "principal": _l("Principal"),
    "interest_rate": _l("Interest rate"), "disbursed_on": _l("Disbursement date"),
    "maturity_on": _l("Maturity date"), "account_manager": _l("Account manager"),
    "purpose": _l("Purpose of funds"), "repayment_account": _l("Repayment account"),
    "borrower": _l("Borrower"), "borrower_name": _l("Borrower"), "kind": _l("Kind"),
    "name": _l("Name"), "id_number": _l("ID number"), "phones": _l("Phones"),
    "phone": _l("Phone"), "addresses": _l("Addresses"), "address": _l("Address"),
    "contacts": _l("Contacts"), "relationship": _l("Relationship"),
    "knows_about_loan": _l("Knows about the loan"), "guarantors": _l("Guarantors"),
    "guarantor": _l("Guarantor"), "collateral": _l("Collateral"),
    "description": _l("Description"), "location": _l("Location"), "area": _l("Area"),
    "valuation": _l("Valuation"), "registration_no": _l("Registration number"),
    "schedule": _l("Installment schedule"), "due_on": _l("Due date"), "seq": _l("Installment"),
    "installment_seq": _l("Installment"), "type": _l("Type"), "value": _l("Value"),
    # processes and tasks
    "process": _l("Process"), "version": _l("Version"),
    "lane": _l("Role"), "data": _l("Submitted"), "comment": _l("Comment"),
    "due": _l("Due"), "due_at": _l("Due"), "completed_at": _l("Completed at"),
    "holder": _l("Holder"), "notified": _l("Notified"), "from": _l("From"), "to": _l("To"),
    "from_version": _l("From version"), "to_version": _l("To version"),
    "reasons": _l("Reasons"), "reason": _l("Reason"), "problems": _l("Problems"),
    "message": _l("Message"), "payload": _l("Content"), "migrated": _l("Moved"),
    "waiting_at": _l("Waiting at"), "error": _l("Error"), "calls": _l("Calls"),
    # stages, daily run, ledger
    "stage": _l("Stage"), "dpd": _l("Days past due"), "on": _l("Date"), "as_of": _l("As of"),
    "loans": _l("Loans"), "stage_changes": _l("Stage changes"), "overdue": _l("Overdue"),
    "penalty_charges": _l("Penalty charges"), "penalty": _l("Penalty interest"),
    "ledger_breaks": _l("Ledger breaks"), "through": _l("Through"), "charges": _l("Charges"),
    "amount": _l("Amount"), "interest": _l("Interest"), "outstanding": _l("Outstanding"),
    "outstanding_before": _l("Outstanding before"), "outstanding_total": _l("Outstanding"),
    "external_ref": _l("External reference"), "paid_at": _l("Paid at"),
    "source": _l("Source"), "installments": _l("Installments"),
    "installments_moved": _l("Installments moved"), "instalments": _l("Installments"),
    "reopened": _l("Reopened"), "before": _l("Before"), "after": _l("After"),
    "effective_on": _l("Effective from"), "lpr_one_year": _l("One-year LPR"),
    "multiple": _l("Multiple"), "recalled_on": _l("Recalled on"),
    "written_off_on": _l("Written off on"), "status": _l("Status"), "total": _l("Total"),
    "paid": _l("Paid"), "fine": _l("Fine"), "code": _l("Problem"), "detail": _l("Detail"),
    "planned_on": _l("Planned for"), "year": _l("Year"),
    # contacts and collection
    "number": _l("Number called"), "number_called": _l("Number called"),
    "answered_by": _l("Answered by"), "outcome": _l("Outcome"),
    "client_type": _l("Client type"), "next_step": _l("Next step"),
    "debt_disclosed": _l("Debt disclosed"), "flag": _l("Flag"), "note": _l("Note"),
    "promised_on": _l("Promised for"), "promised_amount": _l("Promised amount"),
    "met": _l("Met"), "situation": _l("Situation"), "channel": _l("Channel"),
    "receipt": _l("Receipt"), "sent_on": _l("Sent on"), "signed_by": _l("Signed by"),
    "signed_on": _l("Signed on"), "deadline_on": _l("Deadline"), "response": _l("Response"),
    "result": _l("Result"), "case_no": _l("Court case number"), "court": _l("Court"),
    "recovered_amount": _l("Amount recovered"), "effect": _l("Effect"),
    "action": _l("Action"), "write_off_refused": _l("Write-off refused"),
    "overdue_cleared": _l("Overdue cleared"), "overdue_amount": _l("Overdue amount"),
    "guarantor_demand_result": _l("Guarantor demand"),
    "repayment_plan_result": _l("Repayment plan"), "proposed_by": _l("Proposed by"),
    "new_phone": _l("New phone"),
    # monitoring, inspection, risk, extension, write-off
    "risk_group": _l("Risk group"), "inspection_frequency": _l("Inspection frequency"),
    "old_frequency": _l("Previous frequency"), "new_frequency": _l("New frequency"),
    "frequency": _l("Frequency"), "proposed_frequency": _l("Proposed frequency"),
    "approval_remarks": _l("Approval remarks"), "remarks": _l("Remarks"),
    "approved_by": _l("Approved by"), "reviewed_by": _l("Reviewed by"),
    "requested_by": _l("Requested by"), "decided_by": _l("Decided by"),
    "opinion_by": _l("Opinion by"), "cycle": _l("Cycle"), "approver": _l("Approver"),
    "inspector": _l("Inspector"), "reviewer": _l("Reviewer"),
    "inspection_on": _l("Inspection date"), "emergency": _l("Emergency"),
    "methods": _l("Methods"), "documents_collected": _l("Documents collected"),
    "risk_report": _l("Risk report"), "signals": _l("Risk signals"),
    "category": _l("Category"), "category_name": _l("Category"), "decision": _l("Decision"),
    "decision_note": _l("Decision note"), "old_interest_rate": _l("Previous interest rate"),
    "new_interest_rate": _l("New interest rate"), "old_maturity_on": _l("Previous maturity"),
    "new_maturity_on": _l("New maturity"), "current_maturity_on": _l("Current maturity"),
    "current_rate": _l("Current interest rate"), "proposed_rate": _l("Proposed interest rate"),
    "override_justification": _l("Justification of the override"),
    "collateral_action": _l("Collateral"), "contract_disposition": _l("Contract"),
    "deregistration": _l("Deregistration"),
    # documents, exports, users, calendar, notifications, points
    "filename": _l("File"), "content_type": _l("File type"), "size": _l("Size (bytes)"),
    "format": _l("Format"), "filters": _l("Filters"), "rows": _l("Rows"),
    "user": _l("User"), "role": _l("Role"), "step": _l("Step"), "loan": _l("Loan"),
    "date_from": _l("From"), "date_to": _l("To"), "late": _l("Late"),
    "username": _l("User"), "roles": _l("Roles"), "added": _l("Added"),
    "removed": _l("Removed"), "days": _l("Days valid"), "failures": _l("Failed attempts"),
    "minutes": _l("Minutes"), "until": _l("Until"), "limit": _l("Limit"),
    "path": _l("Page"), "method": _l("Method"), "date": _l("Date"), "dates": _l("Dates"),
    "is_working": _l("Working day"), "was_working": _l("Was a working day"),
    "replaced": _l("Replaced"), "entered_days": _l("Days entered"),
    "attempts": _l("Attempts"), "last_error": _l("Last error"), "period": _l("Period"),
    "points": _l("Points"), "field": _l("Value shown"),
    # collateral watch
    "changed": _l("Changed"), "asset_type": _l("Asset type"),
    "registration_office": _l("Registration office"), "registered_on": _l("Registered on"),
    "registration_expires_on": _l("Registration expires on"),
    "insurance_policy": _l("Insurance policy"), "insurer": _l("Insurer"),
    "insurance_expires_on": _l("Insurance expires on"), "valued_on": _l("Valued on"),
    "valuer": _l("Valuer"), "entered_by": _l("Entered by"),
    "ltv": _l("Loan-to-value"), "ltv_before": _l("Loan-to-value before"),
    "ltv_after": _l("Loan-to-value after"), "threshold": _l("Threshold"),
    "ltv_threshold": _l("Loan-to-value threshold"), "expires_on": _l("Expires on"),
    "horizon": _l("Warned until"), "months": _l("Months"),
    "revaluation_months": _l("Months between revaluations"),
    "expiry_warning_days": _l("Working days of warning before an expiry"),
    "collateral_warnings": _l("Collateral warnings"),
    "collateral_revaluations": _l("Collateral revaluations started"),
    "collateral_calendar_problems": _l("Collateral dates past the calendar"),
    "demo": _l("Demo data"), "released": _l("Items released"),
    "released_on": _l("Released on"), "deregistration_no": _l("Deregistration number"),
    "deregistered_on": _l("Deregistered on"),
    "deregistration_office": _l("Deregistration office"),
    # guarantor watch
    "reachable": _l("Reachable"), "capacity": _l("Capacity to pay"),
    "capacity_note": _l("Capacity to pay: what changed"),
    "court_enforcement": _l("Court enforcement"), "enforcement_note": _l("Court enforcement: details"),
    "licence_status": _l("Business licence status"), "previous": _l("Previous status"),
    "weaker": _l("Weaker than before"),
    # notices
    "key": _l("Template"), "template": _l("Template"), "recipient": _l("Recipient"),
    "subject": _l("Subject"), "body": _l("Text"), "notices_sent": _l("Notices sent"),
}
