"""HTTP: routes per resource, request and response schemas, auth, and the one error mapping."""
