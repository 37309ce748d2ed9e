"""The experts read model: the registry's consenting members, as the ranking reads them."""
