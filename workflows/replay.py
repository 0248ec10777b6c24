"""Replay before deploy: run the recorded history of cases on a draft version of their process
and report, per case, where the new version diverges."""
