from diaspora_service.migrations import run_env
from notifications.advisories import tables as advisories_tables
from notifications.campaigns import tables as campaigns_tables
from notifications.contacts import tables as contacts_tables
from notifications.deliveries import tables as deliveries_tables
from notifications.preferences import tables as preferences_tables
from notifications.tables import metadata
from notifications.templates import tables as templates_tables

# Every feature's tables are on the one metadata (named here so that all are defined).
FEATURE_TABLES = (
    advisories_tables,
    campaigns_tables,
    contacts_tables,
    deliveries_tables,
    preferences_tables,
    templates_tables,
)

run_env(metadata)
