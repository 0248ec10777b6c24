"""The template library (issue 16): every outgoing text — SMS, letters, lawyer's letters,
decisions, invitations, reminders — rendered from a versioned template, and what was sent."""
