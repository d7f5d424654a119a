"""Update events: the bus that rings when updates are stored, and the feed that reads them."""
