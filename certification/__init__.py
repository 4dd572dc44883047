"""Access certification: campaigns, review items, decisions and remediation."""
