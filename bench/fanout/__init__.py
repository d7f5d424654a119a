"""The fan-out benchmark's parts: its Go client, the floors and the graphql-js peer."""
