"""Manual fulfilment: a manual application's operations become tasks for people."""
