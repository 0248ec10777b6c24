"""The portfolio (issue 14): the five-category classification of every loan with its
provisions, month-end snapshots kept as facts, and the dashboard read from them."""
