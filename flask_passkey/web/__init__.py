"""The Flask layer: blueprints and views, body schemas, the OpenAPI document, CORS, the per-IP
rate limit and the lockout."""
