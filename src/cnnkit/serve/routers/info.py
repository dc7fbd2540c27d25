"""What the caller's gallery holds and which encoder serves it."""

from __future__ import annotations

from fastapi import APIRouter, Request

from cnnkit import __version__
from cnnkit.face.detectors import describe_detector
from cnnkit.serve.auth import Principal, QueryKey
from cnnkit.serve.deps import offload
from cnnkit.serve.replica import DEFAULT_TOLERANCE
from cnnkit.serve.schemas import Info

router = APIRouter(tags=["info"])


@router.get("/info", response_model=Info, summary="Encoder, tau, persons and descriptors")
async def info(request: Request, who: Principal = QueryKey) -> Info:
    state = request.app.state

    def work() -> Info:
        meta = state.storage.get_meta(who.gallery)
        persons, descriptors = state.storage.counts(who.gallery)
        tau = meta.get("tau")
        return Info(
            gallery=who.gallery,
            encoder=getattr(state.encoder, "model_id", None),
            gallery_encoder=meta.get("model_id"),
            detector=describe_detector(state.config.detector),
            precision=state.precision,
            precision_requested=state.config.precision,
            tau=float(tau) if tau is not None else DEFAULT_TOLERANCE,
            tau_calibrated=tau is not None,
            persons=persons,
            descriptors=descriptors,
            storage=state.storage.describe(),
            version=__version__,
        )

    return await offload(request, work)
