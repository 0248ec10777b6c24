"""Staff scorecards and the daily collection report (issue 14 items 5 and 6)."""
