"""The GraphQL shapes: Strawberry types, inputs and payloads, and the schema built from them."""
