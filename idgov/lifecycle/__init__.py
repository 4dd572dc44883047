"""The HR lifecycle: feeds (CSV, JSON push, SCIM) turned into joiners, movers and leavers."""
