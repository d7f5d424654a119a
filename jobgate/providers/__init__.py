"""Provider adapters: the back ends that run jobs and report their updates."""
