"""One APIRouter per domain; ``app.py`` includes each ``router`` under ``/api/v1``."""

#: Modules whose ``router`` app.py includes, in /docs order.
ROUTER_MODULES = (
    "cnnkit.serve.routers.persons",
    "cnnkit.serve.routers.recognize",
    "cnnkit.serve.routers.info",
    "cnnkit.serve.routers.capabilities",
    "cnnkit.serve.routers.keys",
    "cnnkit.serve.routers.session",
    # the web app's tabs (issue 10)
    "cnnkit.serve.routers.conv",
    "cnnkit.serve.routers.learn",
    "cnnkit.serve.routers.digits",
    "cnnkit.serve.routers.style_jobs",
    "cnnkit.serve.routers.samples",
)
