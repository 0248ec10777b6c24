"""Reading the audit log."""
from accounts.models import utc
from audit.models import AuditEvent


def case_events(case_id):
    return (AuditEvent.query.filter_by(case_id=case_id).order_by(AuditEvent.id).all())


def event_dict(event):
    return {"id": event.id, "at": utc(event.at).isoformat(), "action": event.action,
            "actor": event.actor.username if event.actor else None,
            "instance_id": event.instance_id, "task_id": event.task_id, "data": event.data,
            "hash": event.hash}
