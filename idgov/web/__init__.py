"""HTTP plumbing shared by every module: dependencies, problem+json, pagination."""
