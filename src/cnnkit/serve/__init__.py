"""The HTTP service: ``cnnkit serve`` runs a FastAPI app under uvicorn over the face use cases.

Layout: ``app.py`` (``create_app(ServeConfig)``: models and storage built in the lifespan, hung
on ``app.state``), ``routers/`` (one ``APIRouter`` per domain, under ``/api/v1``), ``auth.py``
(API keys and roles, as the dependency ``require(role)``), ``problems.py`` (errors as RFC 9457
problem details), ``storage/`` (SQLite and PostgreSQL), ``replica.py`` (each process's in-memory
index following the database's change feed), ``batching.py`` (micro-batched encoder calls).
Nothing is imported here, so ``import cnnkit.serve.storage`` does not pay for FastAPI.
"""
