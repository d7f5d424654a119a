"""Interactive sessions of running jobs: web apps, terminals and desktops through the gateway."""
