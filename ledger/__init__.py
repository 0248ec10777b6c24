"""The loan ledger: schedule, repayments and their allocation — every change of money."""
