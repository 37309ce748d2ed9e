"""The observatory of returns: aggregate read models over the service's own tables
(returns, needs met and unmet, referral times by partner, difficulty reports, watchlist
changes), small cells suppressed, as JSON or CSV for analysts (docs/returnees.md,
"Observatory")."""
