"""Returnees service: the ministry's return cell (cases of returning migrants, their
needs, reintegration plans and follow-ups; partners and referrals; the labour-migration
country lists and agreements of the observatory)."""

SERVICE_NAME = "returnees"
