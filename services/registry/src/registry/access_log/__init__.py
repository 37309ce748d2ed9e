"""A person's access log across services: the consumer of their audit events and the route."""
