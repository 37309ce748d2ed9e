"""What every service's HTTP side and database share."""
