"""Propensity to pay (issue 14 item 7): an explainable score per overdue loan, its expected
recovery, the model behind it and the back-test of last month's ranking."""
