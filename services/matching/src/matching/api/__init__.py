"""The HTTP routers of the matching service, one module per aggregate."""
