"""Day-one access: first access for joiners without a password passing through anyone's hands
(the target's own email, else a one-time link sent to the manager)."""
