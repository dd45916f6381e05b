"""Query, mutation and subscription resolvers per context, and the request's dataloaders."""
