"""Registry service (RECOATEX): the census of Togolese abroad."""

SERVICE_NAME = "registry"
