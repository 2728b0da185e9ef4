"""HTTP plumbing shared by the REST API and the console: bodies, problems, routes, query."""
