"""Service levels and the managers' view: overdue tasks, late follow-ups, reassignment,
team workload and delinquency counts (DOMAIN.md §6)."""
