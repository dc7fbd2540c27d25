"""What the caller's gallery holds and which encoder serves it."""

from __future__ import annotations

from fastapi import APIRouter, Request

from cnnkit import __version__
from cnnkit.face.detectors import describe_detector
from cnnkit.face.identification import identification_threshold
from cnnkit.serve.auth import Principal, QueryKey
from cnnkit.serve.deps import gallery_store, offload
from cnnkit.serve.replica import DEFAULT_TOLERANCE
from cnnkit.serve.schemas import Info
from cnnkit.serve.storage.base import gallery_pipeline, read_identification

router = APIRouter(tags=["info"])


@router.get("/info", response_model=Info, summary="Encoder, tau, persons and descriptors")
async def info(request: Request, who: Principal = QueryKey) -> Info:
    state = request.app.state

    def work() -> Info:
        meta = state.storage.get_meta(who.gallery)
        persons, descriptors = state.storage.counts(who.gallery)
        tau = meta.get("tau")
        ident = read_identification(meta)
        threshold = identification_threshold(gallery_store(request, who), log_warning=False)
        return Info(
            gallery=who.gallery,
            encoder=getattr(state.encoder, "model_id", None),
            gallery_encoder=meta.get("model_id"),
            gallery_pipeline=gallery_pipeline(meta),
            detector=describe_detector(state.config.detector),
            precision=state.precision,
            precision_requested=state.config.precision,
            tau=float(tau) if tau is not None else DEFAULT_TOLERANCE,
            tau_calibrated=tau is not None,
            tau_identification=None if ident is None else ident.tau,
            tau_identification_fpir=None if ident is None else ident.fpir,
            tau_identification_gallery_size=None if ident is None else ident.gallery_size,
            tau_identification_score=None if ident is None else ident.norm,
            identify_tau=threshold.tau,
            identify_tau_source=threshold.source,
            warning=threshold.warning,
            persons=persons,
            descriptors=descriptors,
            storage=state.storage.describe(),
            version=__version__,
        )

    return await offload(request, work)
