"""`jobgate agent`: runs next to a provider's cluster and connects out to the gateway."""
