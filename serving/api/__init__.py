"""The HTTP API of the router: dependencies and one router per resource."""
