"""The security behind a loan, watched over its life (issue 16): collateral (registrations,
insurance, valuations, loan-to-value) and guarantors (status checks, demands)."""
