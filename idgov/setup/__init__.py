"""Setting up a deployment: init (migrate, keys, admin token), the demo organisation, serve."""
