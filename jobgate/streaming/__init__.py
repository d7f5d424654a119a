"""The lean path for `jobUpdates` over graphql-transport-ws: one small task per subscriber, one
execution and one JSON encoding per event for every subscriber that asked the same thing."""
