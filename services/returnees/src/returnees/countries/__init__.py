"""Country lists: labour-demand countries and the watchlist of countries where migrant
workers' rights are reported violated (with its advisories)."""
