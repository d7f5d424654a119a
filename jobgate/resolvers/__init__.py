"""Resolvers: read the context, call a service, shape the answer. No storage code here."""
