"""The daily collateral watch (issue 16): registrations and insurance about to expire,
revaluations due, loan-to-value over the threshold — each a risk signal once."""
