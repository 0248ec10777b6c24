"""Asset preservation ordered by the risk manager (issue 11 rule 10, DOMAIN.md §5.7 → §5.3).

The decision "preservation" starts the legal preservation step of collection: a running
collection instance gets the message `preservation_ordered` (interrupting boundary events and
event-gateway branches in bpmn/collection.bpmn move it to `legal_preservation`); without one,
collection starts with `preservation_ordered` set, and its first gateway goes straight there.
"""
from audit.operations import record
from ledger.book import overdue_amount
from workflows import clock
from workflows.definitions import latest_definition
from workflows.service import deliver_message, running_instances, start_process

PROCESS = "collection"
MESSAGE = "preservation_ordered"


def order_preservation(loan, actor=None, reason=""):
    """Start (or move collection to) asset preservation. Flushes; the caller commits.

    Returns what happened: "moved" (a running collection went to preservation), "under_way"
    (collection is already at preservation or later, so nothing to move), "started" (collection
    started at preservation) or "no_process" (no collection diagram deployed)."""
    order = {"reason": reason or "", "ordered_by": getattr(actor, "username", None)}
    if running_instances(loan.id, PROCESS):
        effect = "moved" if deliver_message(loan.id, MESSAGE, order, actor) else "under_way"
    elif latest_definition(PROCESS) is None:
        effect = "no_process"
    else:
        start_process(PROCESS, case_id=loan.id, actor=actor, data={
            "loan_no": loan.loan_no, "dpd": loan.dpd, "stage": loan.stage,
            "overdue_amount": str(overdue_amount(loan.id, clock.today())),
            "preservation_ordered": True, "preservation_order": order})
        effect = "started"
    record("collection.preservation_ordered", actor=actor, case_id=loan.id,
           data={**order, "effect": effect})
    return effect
